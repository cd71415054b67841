// The online half: call the desktop API, check every answer's signature, nonce and date
// against lease keys that a pinned root vouched for, and keep the lease for offline use.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Tasks;

namespace Tessera.Licensing
{
    /// <summary>The answer did not come from licensing (bad or missing signature, a key no
    /// pinned root vouches for, a key set no pinned root signed), or is stale or replayed
    /// (date outside the skew, nonce not ours). Never run on such an answer.</summary>
    public class ResponseRejectedException : Exception
    {
        public ResponseRejectedException(string message) : base(message) { }
    }

    /// <summary>Signed with a kid the trusted key set does not list: perhaps a rotation, the
    /// one case where fetching the root-signed key set again can help.</summary>
    public class UnknownKeyException : ResponseRejectedException
    {
        public UnknownKeyException(string message) : base(message) { }
    }

    public sealed class Answer
    {
        public int Status { get; internal set; }
        public IDictionary<string, object> Body { get; internal set; }
        /// <summary>The verified lease of a VALID answer (null otherwise).</summary>
        public Lease Lease { get; internal set; }

        public string Code { get { return Json.String(Body, "code") ?? ""; } }
        public bool Valid { get { return Json.Get(Body, "valid") as bool? == true; } }
        public string Detail { get { return Json.String(Body, "detail") ?? ""; } }
        public string ActivationId { get { return Json.String(Body, "activation_id"); } }
        public string LicenseKey { get { return Json.String(Body, "license_key"); } }
        /// <summary>On a 429: how long to back off, in seconds (from Retry-After).</summary>
        public int? RetryAfter { get; internal set; }
        /// <summary>VALID under a policy that requires heartbeats: send the next by then.</summary>
        public DateTimeOffset? NextHeartbeatAt { get { return Time("next_heartbeat_at"); } }
        /// <summary>VALID under a floating policy: the seat's end unless a heartbeat renews it.</summary>
        public DateTimeOffset? SeatExpiresAt { get { return Time("seat_expires_at"); } }

        DateTimeOffset? Time(string name)
        {
            DateTimeOffset value;
            var text = Json.String(Body, name);
            return text != null && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal, out value) ? value : (DateTimeOffset?)null;
        }
    }

    public static class ResponseSignature
    {
        public const string Header = "Tessera-Signature";
        public const string Version = "tessera-response-v1";
        static readonly Regex Pattern = new Regex("^kid=\"([^\"]+)\", created=(\\d+), sig=\"([A-Za-z0-9_-]+)\"$", RegexOptions.CultureInvariant);

        public static byte[] SigningInput(string method, string path, long created, byte[] body)
        {
            var digest = Base64Url.Encode(Bytes.Sha256(body));
            return Encoding.UTF8.GetBytes(Version + "\n" + method + "\n" + path + "\n" + created.ToString(CultureInfo.InvariantCulture) + "\n" + digest);
        }

        /// <summary>The signed `created` time of a genuine answer; ResponseRejectedException
        /// (UnknownKeyException for a kid `keys` does not list) otherwise.</summary>
        public static long Verify(string header, string method, string path, byte[] body, KeyRing keys, long now, int skew = Lease.SkewSeconds)
        {
            var match = Pattern.Match(header ?? "");
            long created;
            if (!match.Success || !long.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out created))
                throw new ResponseRejectedException("missing or malformed signature header");
            var key = keys.Find(match.Groups[1].Value);
            if (key == null) throw new UnknownKeyException("signed by a key no pinned root vouches for");
            var signature = Base64Url.TryDecode(match.Groups[3].Value) ?? new byte[0];
            if (!Ed25519.Verify(key, SigningInput(method, path, created, body), signature))
                throw new ResponseRejectedException("bad signature");
            if (Math.Abs(created - now) > skew)
                throw new ResponseRejectedException("answer dated outside the allowed clock skew");
            return created;
        }
    }

    /// <summary>
    /// <code>var client = new LicensingClient(url, store, roots: RootPins);</code>
    /// `roots`: the seller's root public keys (base64url Ed25519), pinned in the app at build
    /// time; lease keys are taken only from a key set one of them signed. Or `leaseKeys`: a
    /// JWKS of lease keys pinned directly (no rotation without a new build). One is required.
    /// Any exception other than ResponseRejectedException (HttpRequestException, a timeout)
    /// means "offline": fall back to Offline().
    /// </summary>
    public sealed class LicensingClient : IDisposable
    {
        readonly HttpClient http;
        readonly bool ownsHttp;
        readonly Roots roots;
        readonly KeyRing pinned;
        KeySet keySet;

        public LeaseStore Store { get; private set; }
        /// <summary>Unix seconds now; replaceable for tests.</summary>
        public Func<long> Clock { get; set; }
        /// <summary>The key set accepted last (null before the first fetch, or with pinned keys).</summary>
        public KeySet KeySet { get { return keySet; } }

        public LicensingClient(string baseUrl, LeaseStore store, IEnumerable<string> roots = null,
            IDictionary<string, object> leaseKeys = null, HttpClient http = null)
        {
            var pins = roots == null ? new List<string>() : new List<string>(roots);
            if ((pins.Count > 0) == (leaseKeys != null))
                throw new ArgumentException("pin either root public keys (roots) or lease keys (leaseKeys)");
            Store = store;
            this.roots = pins.Count > 0 ? new Roots(pins) : null;
            pinned = leaseKeys != null ? Roots.PinnedLeaseKeys(leaseKeys) : null;
            // Disposed here only if made here: a caller's client stays the caller's.
            ownsHttp = http == null;
            this.http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            if (this.http.BaseAddress == null) this.http.BaseAddress = new Uri(baseUrl.TrimEnd('/') + "/");
            Clock = () => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        }

        KeyRing Keys
        {
            get { return pinned ?? (keySet != null ? keySet.Keys : KeyRing.Empty); }
        }

        public void Dispose()
        {
            if (ownsHttp) http.Dispose();
        }

        /// <summary>Fetch the key set and accept it only if a pinned root signed it, it has
        /// not expired, and its version is not lower than any this machine accepted before.
        /// Returns the lease keys it vouches for (the pinned ones when keys are pinned).</summary>
        public async Task<KeyRing> PublicKeysAsync()
        {
            if (roots == null) return Keys;
            using (var response = await http.GetAsync("v1/public-keys").ConfigureAwait(false))
            {
                if ((int)response.StatusCode != 200)
                    throw new ResponseRejectedException("public keys: HTTP " + (int)response.StatusCode);
                var body = Json.TryParseObject(await response.Content.ReadAsStringAsync().ConfigureAwait(false));
                if (body == null) throw new ResponseRejectedException("public keys: not JSON");
                var entries = Json.Array(body, "key_sets");
                var tokens = new List<string>();
                if (entries != null) foreach (var entry in entries) tokens.Add(entry as string);
                long floor = Math.Max(Store.AcceptedVersion(), keySet != null ? keySet.Version : 0);
                try
                {
                    keySet = roots.Verify(tokens, Clock(), floor);
                }
                catch (KeySetException error)
                {
                    throw new ResponseRejectedException("key set rejected: " + error.Code);
                }
                return keySet.Keys;
            }
        }

        /// <summary>For the store: the lease keys a cached key set vouches for, re-verified
        /// against the pinned roots (never trusted because it is in the file).</summary>
        Vouched Vouch(string token)
        {
            if (pinned != null) return new Vouched(pinned, long.MaxValue);
            try
            {
                var set = roots.Verify(token == null ? new string[0] : new[] { token }, null);
                return new Vouched(set.Keys, set.ExpiresAt);
            }
            catch (KeySetException error)
            {
                throw new LeaseException("CACHE_TAMPERED", "key set " + error.Code);
            }
        }

        static string NewNonce()
        {
            var raw = new byte[16];
            using (var random = RandomNumberGenerator.Create()) random.GetBytes(raw);
            return Base64Url.Encode(raw);
        }

        async Task<Answer> CallAsync(string path, IDictionary<string, object> payload, string accessToken)
        {
            var nonce = NewNonce();
            payload["nonce"] = nonce;
            var request = new HttpRequestMessage(HttpMethod.Post, path.TrimStart('/'))
            {
                Content = new ByteArrayContent(Json.Utf8(Json.Canonical(payload))),
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            if (accessToken != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
            using (request)
            using (var response = await http.SendAsync(request).ConfigureAwait(false))
            {
                var body = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                IEnumerable<string> values;
                var header = response.Headers.TryGetValues(ResponseSignature.Header, out values) ? string.Join(",", values) : null;
                var method = request.Method.Method;
                var signedPath = response.RequestMessage.RequestUri.AbsolutePath;
                long created;
                try
                {
                    created = ResponseSignature.Verify(header, method, signedPath, body, Keys, Clock());
                }
                catch (UnknownKeyException)
                {
                    if (roots == null) throw;
                    // Maybe rotated: the only refetch, and what it brings is trusted only if a
                    // pinned root signed it. A bad signature by a known key never refetches.
                    await PublicKeysAsync().ConfigureAwait(false);
                    created = ResponseSignature.Verify(header, method, signedPath, body, Keys, Clock());
                }
                var parsed = Json.TryParseObject(Encoding.UTF8.GetString(body));
                if (parsed == null) throw new ResponseRejectedException("answer is not a JSON object");
                int status = (int)response.StatusCode;
                if (status == 200 && Json.String(parsed, "nonce") != nonce)
                    throw new ResponseRejectedException("nonce not echoed: a replayed answer");
                var answer = new Answer { Status = status, Body = parsed };
                if (response.Headers.RetryAfter != null && response.Headers.RetryAfter.Delta.HasValue)
                    answer.RetryAfter = (int)Math.Ceiling(response.Headers.RetryAfter.Delta.Value.TotalSeconds);
                var token = Json.String(parsed, "lease");
                if (status == 200 && answer.Valid && token != null)
                {
                    try
                    {
                        answer.Lease = Lease.Verify(token, Keys, (string)payload["fingerprint"], Clock());
                    }
                    catch (LeaseException error)
                    {
                        throw new ResponseRejectedException("lease rejected: " + error.Code);
                    }
                    bool rooted = roots != null && keySet != null;
                    Store.Save(answer.Lease, rooted ? keySet.Token : null, rooted ? keySet.Version : 0, created);
                }
                // A revoked license must not keep running offline on its old lease.
                if (status == 200 && answer.Code == "REVOKED") Store.Clear();
                return answer;
            }
        }

        static Dictionary<string, object> Payload(string fingerprint)
        {
            return new Dictionary<string, object>(StringComparer.Ordinal) { { "fingerprint", fingerprint } };
        }

        /// <summary>Activate this machine with a license key, or (key null) with a device
        /// sign-in's access token. machineName, platform, appVersion: at most 128 characters.</summary>
        public Task<Answer> ActivateAsync(string fingerprint, string key = null, string accessToken = null,
            string machineName = null, string platform = null, string appVersion = null, string product = null)
        {
            return CallAsync("/v1/licenses/activate", MachinePayload(fingerprint, key, machineName, platform, appVersion, product), accessToken);
        }

        static Dictionary<string, object> MachinePayload(string fingerprint, string key, string machineName,
            string platform, string appVersion, string product)
        {
            var payload = Payload(fingerprint);
            if (key != null) payload["key"] = key;
            if (machineName != null) payload["machine_name"] = machineName;
            if (platform != null) payload["platform"] = platform;
            if (appVersion != null) payload["app_version"] = appVersion;
            if (product != null) payload["product"] = product;
            return payload;
        }

        /// <summary>Under a floating policy: take a seat (activating this machine if needed);
        /// NO_FREE_SEAT when every seat is held. Elsewhere the same as ActivateAsync.</summary>
        public Task<Answer> CheckoutAsync(string fingerprint, string key = null, string accessToken = null,
            string machineName = null, string platform = null, string appVersion = null, string product = null)
        {
            return CallAsync("/v1/licenses/checkout", MachinePayload(fingerprint, key, machineName, platform, appVersion, product), accessToken);
        }

        /// <summary>This machine still runs: send it by each answer's NextHeartbeatAt. Renews a
        /// floating seat; NOT_ACTIVATED when the server deactivated this machine for silence
        /// (the cached lease is deleted then), CHECKOUT_REQUIRED when its seat lapsed.</summary>
        public async Task<Answer> HeartbeatAsync(string key, string fingerprint)
        {
            var payload = Payload(fingerprint);
            payload["key"] = key;
            var answer = await CallAsync("/v1/licenses/heartbeat", payload, null).ConfigureAwait(false);
            if (answer.Code == "NOT_ACTIVATED" || answer.Code == "CHECKOUT_REQUIRED") Store.Clear();
            return answer;
        }

        /// <summary>Give the floating seat back (on exit); the cached seat lease is deleted.</summary>
        public async Task<Answer> CheckinAsync(string key, string fingerprint)
        {
            var payload = Payload(fingerprint);
            payload["key"] = key;
            var answer = await CallAsync("/v1/licenses/checkin", payload, null).ConfigureAwait(false);
            if (answer.Code == "CHECKED_IN") Store.Clear();
            return answer;
        }

        /// <summary>Read-only: at start-up and about daily; on VALID the cached lease is replaced.</summary>
        public Task<Answer> ValidateAsync(string key, string fingerprint, string activationId = null)
        {
            var payload = Payload(fingerprint);
            payload["key"] = key;
            if (activationId != null) payload["activation_id"] = activationId;
            return CallAsync("/v1/licenses/validate", payload, null);
        }

        /// <summary>Free this machine's seat; on DEACTIVATED the cached lease is deleted.</summary>
        public async Task<Answer> DeactivateAsync(string key, string fingerprint)
        {
            var payload = Payload(fingerprint);
            payload["key"] = key;
            var answer = await CallAsync("/v1/licenses/deactivate", payload, null).ConfigureAwait(false);
            if (answer.Code == "DEACTIVATED") Store.Clear();
            return answer;
        }

        /// <summary>The cached lease, if it still holds on this machine now (no network);
        /// LeaseException (NO_LEASE, CACHE_TAMPERED, CLOCK_ROLLED_BACK, EXPIRED, ...) otherwise.</summary>
        public Lease Offline(string fingerprint, long? now = null)
        {
            return Store.Check(fingerprint, now ?? Clock(), Vouch);
        }
    }
}
