// The client against the real licensing and auth services that tests/test_dotnet_client.py
// starts (uvicorn processes on real Postgres, NATS and Redis). That module prepares the
// licenses through billing's test checkout (one active, one refunded, one disputed, one
// expired by an admin) and hands their keys and a signed-in browser session over in
// TESSERA_LIVE_*. Nothing is stubbed: the attacks below rewrite genuine answers in flight.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;
using Tessera.Licensing;

namespace Tessera.Licensing.Tests
{
    [TestFixture, Category("Live")]
    public class LiveTests : InFolder
    {
        static string Env(string name)
        {
            var value = Environment.GetEnvironmentVariable("TESSERA_LIVE_" + name);
            if (string.IsNullOrEmpty(value)) throw new InvalidOperationException("TESSERA_LIVE_" + name + " is not set: run the live suite through tests/test_dotnet_client.py");
            return value;
        }

        static string LicensingUrl { get { return Env("LICENSING_URL"); } }
        static string AuthUrl { get { return Env("AUTH_URL"); } }
        static string[] Pins { get { return Env("PINS").Split(','); } }

        static T Run<T>(Task<T> task) { return task.GetAwaiter().GetResult(); }

        static string Fingerprint(string what) { return "dotnet-" + what + "-" + Guid.NewGuid().ToString("N"); }

        LicensingClient Client(HttpMessageHandler handler = null, string cache = "lease.json")
        {
            var store = new LeaseStore(Path.Combine(folder, cache), "live-machine");
            var http = handler == null ? null : new HttpClient(handler) { BaseAddress = new Uri(LicensingUrl.TrimEnd('/') + "/") };
            return new LicensingClient(LicensingUrl, store, roots: Pins, http: http);
        }

        [Test]
        public void ActivatePastTheSeatLimitValidateAndDeactivate()
        {
            var key = Env("KEY");
            int seats = int.Parse(Env("SEATS"));
            var machines = new List<string>();
            for (int i = 0; i <= seats; i++) machines.Add(Fingerprint("seat" + i));
            string first = machines[0], extra = machines[seats];
            using (var client = Client())
            {
                Run(client.PublicKeysAsync());
                Assert.AreEqual("NOT_ACTIVATED", Run(client.ValidateAsync(key, first)).Code);

                var activated = Run(client.ActivateAsync(first, key: key, machineName: "DOTNET-1", platform: "windows-x64", appVersion: "1.4.2"));
                Assert.AreEqual("VALID", activated.Code, activated.Detail);
                Assert.IsTrue(activated.Valid);
                Assert.IsNotNull(activated.Lease);
                Assert.AreEqual(first, activated.Lease.Fingerprint);
                Assert.AreEqual(activated.Lease.LicenseId, client.Offline(first).LicenseId, "the lease is cached for offline use");

                var again = Run(client.ActivateAsync(first, key: key));
                Assert.AreEqual(activated.ActivationId, again.ActivationId, "activating twice takes no second seat");
                for (int i = 1; i < seats; i++)
                    Assert.AreEqual("VALID", Run(client.ActivateAsync(machines[i], key: key)).Code, "seat " + (i + 1));

                var full = Run(client.ActivateAsync(extra, key: key));
                Assert.AreEqual("TOO_MANY_ACTIVATIONS", full.Code);
                Assert.IsFalse(full.Valid);
                Assert.IsNull(full.Lease);
                Assert.AreEqual("TOO_MANY_ACTIVATIONS", Run(client.ValidateAsync(key, extra)).Code);
                Assert.AreEqual("FINGERPRINT_MISMATCH", Run(client.ValidateAsync(key, extra, activated.ActivationId)).Code);
                Assert.AreEqual("VALID", Run(client.ValidateAsync(key, first, activated.ActivationId)).Code);

                Assert.AreEqual("DEACTIVATED", Run(client.DeactivateAsync(key, first)).Code);
                var gone = Assert.Throws<LeaseException>(() => client.Offline(first));
                Assert.AreEqual("NO_LEASE", gone.Code, "deactivating deletes the cached lease");
                Assert.AreEqual("NOT_ACTIVATED", Run(client.DeactivateAsync(key, first)).Code);

                Assert.AreEqual("VALID", Run(client.ActivateAsync(extra, key: key)).Code, "the freed seat is taken");
                for (int i = 1; i <= seats; i++)
                    Assert.AreEqual("DEACTIVATED", Run(client.DeactivateAsync(key, machines[i])).Code);
            }
        }

        [Test]
        public void ValidateAnswersEachStateOfALicense()
        {
            const string payload = "0123456789ABCDEFGHJKMNPQ";
            var unknown = KeyFormat.Display(payload + KeyFormat.CheckSymbol(payload));
            var cases = new Dictionary<string, string>
            {
                { unknown, "NOT_FOUND" },
                { "not-a-key", "NOT_FOUND" },
                { Env("REVOKED_KEY"), "REVOKED" },
                { Env("SUSPENDED_KEY"), "SUSPENDED" },
                { Env("EXPIRED_KEY"), "EXPIRED" },
            };
            using (var client = Client())
            {
                foreach (var pair in cases)
                {
                    var answer = Run(client.ValidateAsync(pair.Key, Fingerprint("state")));
                    Assert.AreEqual(pair.Value, answer.Code, pair.Key + ": " + answer.Detail);
                    Assert.IsFalse(answer.Valid);
                    Assert.IsNull(answer.Lease);
                }
            }
        }

        [Test]
        public void ARefundedLicenseIsRevokedOnTheMachineThatRanIt()
        {
            // test_dotnet_client.py activated this machine, then refunded the purchase.
            using (var client = Client())
            {
                var answer = Run(client.ValidateAsync(Env("REVOKED_KEY"), Env("REVOKED_FINGERPRINT")));
                Assert.AreEqual("REVOKED", answer.Code, answer.Detail);
                Assert.AreEqual("revoked", Json.String((IDictionary<string, object>)answer.Body["license"], "status"));
            }
        }

        [Test]
        public void ATamperedAnswerIsRefused()
        {
            var tamper = new Rewriter((request, body, signature) =>
            {
                var text = Encoding.UTF8.GetString(body).Replace("NOT_ACTIVATED", "VALID_________");
                return Tuple.Create(Encoding.UTF8.GetBytes(text), signature);
            });
            using (var client = Client(tamper))
            {
                Run(client.PublicKeysAsync());
                var error = Assert.Catch<ResponseRejectedException>(() => Run(client.ValidateAsync(Env("KEY"), Fingerprint("tampered"))));
                StringAssert.Contains("bad signature", error.Message);
                Assert.AreEqual(1, tamper.Rewritten);
            }
        }

        [Test]
        public void AnAnswerSignedByAForeignKeyIsRefused()
        {
            var attacker = Attacker.FromSeed(7);
            // Under its own kid: unknown, so the client refetches the genuine key set once,
            // which does not list it either.
            var ownKid = new Rewriter((request, body, signature) =>
                Tuple.Create(body, attacker.SignAnswer(attacker.Kid, request, body)));
            using (var client = Client(ownKid))
            {
                Assert.Catch<ResponseRejectedException>(() => Run(client.ValidateAsync(Env("KEY"), Fingerprint("foreign"))));
            }
            // Under the genuine kid: the signature fails, and the client never refetches.
            using (var probe = Client())
            {
                var genuineKid = new List<string>(Run(probe.PublicKeysAsync()).Kids)[0];
                var stolenKid = new Rewriter((request, body, signature) =>
                    Tuple.Create(body, attacker.SignAnswer(genuineKid, request, body)));
                using (var client = Client(stolenKid))
                {
                    Run(client.PublicKeysAsync());
                    var error = Assert.Catch<ResponseRejectedException>(() => Run(client.ValidateAsync(Env("KEY"), Fingerprint("stolen-kid"))));
                    StringAssert.Contains("bad signature", error.Message);
                }
            }
        }

        [Test]
        public void AKeySetSignedByAForeignRootIsRefused()
        {
            // A man in the middle serves his own root's key set listing his own lease key and
            // signs every answer with it.
            var root = Attacker.FromSeed(1);
            var lease = Attacker.FromSeed(2);
            var mitm = new Rewriter((request, body, signature) =>
            {
                if (request.RequestUri.AbsolutePath == "/v1/public-keys")
                    return Tuple.Create(Encoding.UTF8.GetBytes("{\"key_sets\":[\"" + root.KeySet(lease) + "\"]}"), (string)null);
                return Tuple.Create(body, lease.SignAnswer(lease.Kid, request, body));
            });
            using (var client = Client(mitm))
            {
                var error = Assert.Catch<ResponseRejectedException>(() => Run(client.PublicKeysAsync()));
                StringAssert.Contains("FOREIGN_ROOT", error.Message);
                Assert.Catch<ResponseRejectedException>(() => Run(client.ValidateAsync(Env("KEY"), Fingerprint("mitm"))));
            }
        }

        [Test]
        public void AReplayedAnswerIsRefused()
        {
            byte[] kept = null;
            string keptSignature = null;
            var replay = new Rewriter((request, body, signature) =>
            {
                if (request.Method != HttpMethod.Post) return Tuple.Create(body, signature);
                if (kept == null) { kept = body; keptSignature = signature; }
                return Tuple.Create(kept, keptSignature);
            });
            using (var client = Client(replay))
            {
                Run(client.PublicKeysAsync());
                var fingerprint = Fingerprint("replayed");
                Assert.AreEqual("NOT_ACTIVATED", Run(client.ValidateAsync(Env("KEY"), fingerprint)).Code);
                var error = Assert.Catch<ResponseRejectedException>(() => Run(client.ValidateAsync(Env("KEY"), fingerprint)));
                StringAssert.Contains("nonce", error.Message);
            }
        }

        [Test]
        public void FloatingSeatsAreCheckedOutRenewedByHeartbeatAndReturned()
        {
            // One floating seat; a seat lasts the heartbeat interval and its grace (2 + 2 s).
            var key = Env("FLOATING_KEY");
            string first = Fingerprint("floating-a"), second = Fingerprint("floating-b");
            using (var a = Client(cache: "a.json"))
            using (var b = Client(cache: "b.json"))
            {
                var seat = Run(a.CheckoutAsync(first, key: key, machineName: "DOTNET-FLOAT-A"));
                Assert.AreEqual("VALID", seat.Code, seat.Detail);
                Assert.IsTrue(seat.SeatExpiresAt.HasValue && seat.NextHeartbeatAt.HasValue);
                Assert.LessOrEqual(seat.Lease.ExpiresAt, seat.SeatExpiresAt.Value.ToUnixTimeSeconds(), "the lease ends with the seat");
                Assert.AreEqual("NO_FREE_SEAT", Run(b.CheckoutAsync(second, key: key)).Code);
                Assert.AreEqual("CHECKOUT_REQUIRED", Run(b.ValidateAsync(key, second)).Code);

                // Heartbeats keep the seat past the 4 s it lasts unrenewed.
                for (int i = 0; i < 6; i++)
                {
                    Thread.Sleep(1000);
                    Assert.AreEqual("VALID", Run(a.HeartbeatAsync(key, first)).Code, "heartbeat " + i);
                }
                Assert.AreEqual("NO_FREE_SEAT", Run(b.CheckoutAsync(second, key: key)).Code);

                // Checked in on exit: the seat is the other machine's, and A's seat lease is gone.
                Assert.AreEqual("CHECKED_IN", Run(a.CheckinAsync(key, first)).Code);
                Assert.AreEqual("NO_LEASE", Assert.Throws<LeaseException>(() => a.Offline(first)).Code);
                Assert.AreEqual("VALID", Run(b.CheckoutAsync(second, key: key)).Code);

                // B crashes (no heartbeat, no check-in): its seat returns, and the sweeper
                // deactivates it; it learns so at its next call.
                var deadline = DateTime.UtcNow.AddSeconds(20);
                Answer retaken;
                do
                {
                    Thread.Sleep(500);
                    retaken = Run(a.CheckoutAsync(first, key: key));
                } while (retaken.Code != "VALID" && DateTime.UtcNow < deadline);
                Assert.AreEqual("VALID", retaken.Code, "the crashed machine's seat came back");
                do
                {
                    Thread.Sleep(500);
                    Assert.AreEqual("VALID", Run(a.HeartbeatAsync(key, first)).Code);
                } while (Run(b.ValidateAsync(key, second)).Code != "NOT_ACTIVATED" && DateTime.UtcNow < deadline);
                Assert.AreEqual("NOT_ACTIVATED", Run(b.HeartbeatAsync(key, second)).Code, "swept for silence");
                Assert.AreEqual("CHECKED_IN", Run(a.CheckinAsync(key, first)).Code);
            }
        }

        // ------------------------------------------------------------------ device sign-in

        DeviceSignIn SignIn(FileTokenStore store)
        {
            return new DeviceSignIn(AuthUrl, "chartgpt-desktop", "1.4.2-dotnet", store);
        }

        /// <summary>What the portal's /device page does when the signed-in person decides.</summary>
        static void Decide(string userCode, string decision)
        {
            using (var auth = new HttpClient { BaseAddress = new Uri(AuthUrl.TrimEnd('/') + "/") })
            {
                var exchange = Post(auth, "v1/sessions/token", "{\"session_id\":\"" + Env("SESSION") + "\"}", null);
                var token = Json.String(exchange, "access_token");
                var decided = Post(auth, "v1/device/approve", "{\"user_code\":\"" + userCode + "\",\"decision\":\"" + decision + "\"}", token);
                Assert.AreEqual(decision, Json.String(decided, "decision"));
            }
        }

        static IDictionary<string, object> Post(HttpClient http, string path, string json, string bearer)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            if (bearer != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            using (var response = http.SendAsync(request).GetAwaiter().GetResult())
            {
                var text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                Assert.AreEqual(200, (int)response.StatusCode, path + ": " + text);
                return Json.TryParseObject(text);
            }
        }

        [Test]
        public void DeviceSignInActivatesByTokenAndRotatesItsRefreshToken()
        {
            var tokenFile = Path.Combine(folder, "refresh.token");
            var store = new FileTokenStore(tokenFile, protect: false);
            var shown = new List<DeviceCode>();
            string access;
            using (var signIn = SignIn(store))
            {
                Assert.IsNull(Run(signIn.AccessTokenAsync()), "no sign-in yet");
                var code = Run(signIn.StartAsync());
                shown.Add(code);
                StringAssert.EndsWith("/device", code.VerificationUri);
                int interval = code.Interval;
                // Polled at once, before the interval: auth says slow_down and the client
                // waits 5 s longer from then on (RFC 8628 §3.5).
                Assert.IsNull(Run(signIn.PollOnceAsync(code)));
                Assert.AreEqual(interval + DeviceSignIn.SlowDownSeconds, code.Interval);
                Assert.IsNull(Run(signIn.AccessTokenAsync()), "pending: still no token");

                Decide(code.UserCode, "approve");
                access = Run(signIn.PollAsync(code));
                Assert.IsNotNull(access);
            }
            var firstRefresh = File.ReadAllText(tokenFile);
            Assert.IsNotEmpty(firstRefresh);

            var fingerprint = Fingerprint("device");
            using (var client = Client())
            {
                var activated = Run(client.ActivateAsync(fingerprint, accessToken: access, machineName: "DOTNET-DEVICE"));
                Assert.AreEqual("VALID", activated.Code, activated.Detail);
                CollectionAssert.Contains(new[] { Env("KEY"), Env("SPARE_KEY") }, activated.LicenseKey);
                Assert.IsNotNull(activated.Lease);
                Assert.AreEqual("NO_LICENSE", Run(client.ActivateAsync(Fingerprint("other"), accessToken: access, product: "no-such-product")).Code);

                // The next run of the app: no access token in memory, the stored refresh
                // token gets one and is replaced by its successor.
                using (var nextRun = SignIn(store))
                {
                    var renewed = Run(nextRun.AccessTokenAsync());
                    Assert.IsNotNull(renewed);
                    Assert.AreNotEqual(firstRefresh, File.ReadAllText(tokenFile), "the refresh token rotated");
                    Assert.AreEqual("VALID", Run(client.ActivateAsync(fingerprint, accessToken: renewed)).Code);
                }
                Assert.AreEqual("DEACTIVATED", Run(client.DeactivateAsync(activated.LicenseKey, fingerprint)).Code);
            }
        }

        [Test]
        public void ADeniedDeviceSignInEndsWithAccessDenied()
        {
            var store = new FileTokenStore(Path.Combine(folder, "refresh.token"), protect: false);
            using (var signIn = SignIn(store))
            {
                var code = Run(signIn.StartAsync());
                Decide(code.UserCode, "deny");
                var error = Assert.Throws<DeviceSignInException>(() => Run(signIn.PollAsync(code)));
                Assert.AreEqual("access_denied", error.Error);
                Assert.IsNull(store.Load());
            }
        }
    }

    /// <summary>Passes each request to the real service and lets `rewrite` change the
    /// answer's body and Tessera-Signature header on its way back.</summary>
    sealed class Rewriter : DelegatingHandler
    {
        readonly Func<HttpRequestMessage, byte[], string, Tuple<byte[], string>> rewrite;
        public int Rewritten;

        public Rewriter(Func<HttpRequestMessage, byte[], string, Tuple<byte[], string>> rewrite)
            : base(new HttpClientHandler())
        {
            this.rewrite = rewrite;
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancel)
        {
            var response = await base.SendAsync(request, cancel).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            IEnumerable<string> values;
            var signature = response.Headers.TryGetValues(ResponseSignature.Header, out values) ? string.Join(",", values) : null;
            var changed = rewrite(request, body, signature);
            var mediaType = response.Content.Headers.ContentType;
            response.Content = new ByteArrayContent(changed.Item1);
            response.Content.Headers.ContentType = mediaType;
            response.Headers.Remove(ResponseSignature.Header);
            if (changed.Item2 != null) response.Headers.TryAddWithoutValidation(ResponseSignature.Header, changed.Item2);
            if (!BytesEqual(body, changed.Item1)) Interlocked.Increment(ref Rewritten);
            return response;
        }

        static bool BytesEqual(byte[] a, byte[] b)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
            return true;
        }
    }

    /// <summary>An Ed25519 key pair of someone who is not the seller (libsodium's signer).</summary>
    sealed class Attacker
    {
        [DllImport("libsodium", CallingConvention = CallingConvention.Cdecl)]
        static extern int crypto_sign_seed_keypair(byte[] pk, byte[] sk, byte[] seed);

        [DllImport("libsodium", CallingConvention = CallingConvention.Cdecl)]
        static extern int crypto_sign_detached(byte[] sig, out ulong siglen, byte[] m, ulong mlen, byte[] sk);

        readonly byte[] secret = new byte[64];
        public readonly byte[] PublicKey = new byte[32];

        public string Kid { get { return Jose.Thumbprint(PublicKey); } }

        public static Attacker FromSeed(byte fill)
        {
            var attacker = new Attacker();
            var seed = new byte[32];
            for (int i = 0; i < seed.Length; i++) seed[i] = fill;
            Assert.AreEqual(0, crypto_sign_seed_keypair(attacker.PublicKey, attacker.secret, seed));
            return attacker;
        }

        public byte[] Sign(byte[] message)
        {
            var sig = new byte[64];
            ulong length;
            Assert.AreEqual(0, crypto_sign_detached(sig, out length, message, (ulong)message.Length, secret));
            return sig;
        }

        public string SignAnswer(string kid, HttpRequestMessage request, byte[] body)
        {
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var input = ResponseSignature.SigningInput(request.Method.Method, request.RequestUri.AbsolutePath, created, body);
            return "kid=\"" + kid + "\", created=" + created + ", sig=\"" + Base64Url.Encode(Sign(input)) + "\"";
        }

        /// <summary>A well-formed key set, signed by this key as its root, listing `lease`.</summary>
        public string KeySet(Attacker lease)
        {
            long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var header = "{\"alg\":\"EdDSA\",\"kid\":\"" + Kid + "\",\"typ\":\"tessera-key-set+jwt\"}";
            var payload = "{\"exp\":" + (now + 86400) + ",\"iat\":" + now + ",\"iss\":\"tessera-licensing\",\"keys\":[{\"alg\":\"EdDSA\",\"crv\":\"Ed25519\",\"kid\":\""
                + lease.Kid + "\",\"kty\":\"OKP\",\"use\":\"sig\",\"x\":\"" + Base64Url.Encode(lease.PublicKey) + "\"}],\"typ\":\"tessera-key-set\",\"version\":99}";
            var signingInput = Base64Url.Encode(Encoding.UTF8.GetBytes(header)) + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(payload));
            return signingInput + "." + Base64Url.Encode(Sign(Encoding.ASCII.GetBytes(signingInput)));
        }
    }
}
