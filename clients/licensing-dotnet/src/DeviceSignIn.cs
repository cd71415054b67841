// Desktop sign-in by the device authorization grant (RFC 8628) at auth: show the user code
// and URL, poll (slowing down when told), keep the refresh token and rotate it on each use.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Http;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Tessera.Licensing
{
    /// <summary>An OAuth error from auth: Error is the RFC 6749/8628 code (access_denied,
    /// expired_token, invalid_grant, invalid_client, ...). invalid_grant on a refresh means
    /// the desktop sign-in ended (revoked in the portal, or expired): sign in again.</summary>
    public class DeviceSignInException : Exception
    {
        public string Error { get; private set; }

        public DeviceSignInException(string error, string description)
            : base(string.IsNullOrEmpty(description) ? error : error + ": " + description)
        {
            Error = error;
        }
    }

    public sealed class DeviceCode
    {
        public string Code { get; internal set; }
        /// <summary>Show this to the person, with VerificationUri.</summary>
        public string UserCode { get; internal set; }
        public string VerificationUri { get; internal set; }
        public DateTimeOffset ExpiresAt { get; internal set; }
        /// <summary>Seconds between polls; grows by 5 on each slow_down (RFC 8628 §3.5).</summary>
        public int Interval { get; internal set; }
    }

    /// <summary>Where the refresh token lives between runs.</summary>
    public interface ITokenStore
    {
        string Load();
        void Save(string refreshToken);
        void Clear();
    }

    /// <summary>A file, written atomically. `protect` true (the default on Windows) seals it
    /// with DPAPI for the current Windows user, so another account or a copied file cannot
    /// use it.</summary>
    public sealed class FileTokenStore : ITokenStore
    {
        static readonly byte[] Entropy = Encoding.UTF8.GetBytes("tessera-refresh-token-v1");
        readonly string path;
        readonly bool protect;

        public FileTokenStore(string path, bool? protect = null)
        {
            this.path = path;
            this.protect = protect ?? Environment.OSVersion.Platform == PlatformID.Win32NT;
        }

        public string Load()
        {
            byte[] raw;
            try
            {
                raw = File.ReadAllBytes(path);
            }
            catch (FileNotFoundException) { return null; }
            catch (DirectoryNotFoundException) { return null; }
            try
            {
                if (protect) raw = ProtectedData.Unprotect(raw, Entropy, DataProtectionScope.CurrentUser);
                var token = new UTF8Encoding(false, true).GetString(raw);
                return token.Length > 0 ? token : null;
            }
            catch (CryptographicException) { Clear(); return null; }
            catch (ArgumentException) { Clear(); return null; }
        }

        public void Save(string refreshToken)
        {
            var raw = Json.Utf8(refreshToken);
            if (protect) raw = ProtectedData.Protect(raw, Entropy, DataProtectionScope.CurrentUser);
            var folder = Path.GetDirectoryName(Path.GetFullPath(path));
            Directory.CreateDirectory(folder);
            var tmp = Path.Combine(folder, ".token-" + Guid.NewGuid().ToString("N"));
            File.WriteAllBytes(tmp, raw);
            if (File.Exists(path)) File.Replace(tmp, path, null);
            else File.Move(tmp, path);
        }

        public void Clear()
        {
            try { File.Delete(path); } catch (DirectoryNotFoundException) { }
        }
    }

    /// <summary>
    /// <code>var signIn = new DeviceSignIn(authUrl, "chartgpt-desktop", "1.4.2", new FileTokenStore(path));
    /// string token = await signIn.AccessTokenAsync() ?? await signIn.SignInAsync(code => Show(code), cancel);</code>
    /// </summary>
    public sealed class DeviceSignIn : IDisposable
    {
        public const string DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";
        /// <summary>RFC 8628 §3.5: each slow_down adds 5 seconds to the interval.</summary>
        public const int SlowDownSeconds = 5;

        readonly HttpClient http;
        readonly bool ownsHttp;
        readonly string clientId;
        readonly string clientVersion;
        readonly ITokenStore tokens;
        string accessToken;
        DateTimeOffset accessExpires;

        /// <summary>Waits between polls; replaceable for tests.</summary>
        public Func<TimeSpan, CancellationToken, Task> Delay { get; set; }

        public DeviceSignIn(string authUrl, string clientId, string clientVersion, ITokenStore tokens, HttpClient http = null)
        {
            this.clientId = clientId;
            this.clientVersion = clientVersion;
            this.tokens = tokens;
            ownsHttp = http == null;
            this.http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            if (this.http.BaseAddress == null) this.http.BaseAddress = new Uri(authUrl.TrimEnd('/') + "/");
            Delay = (span, cancel) => Task.Delay(span, cancel);
        }

        public void Dispose()
        {
            if (ownsHttp) http.Dispose();
        }

        /// <summary>Whether a refresh token is stored (the person signed in before).</summary>
        public bool SignedIn { get { return tokens.Load() != null; } }

        async Task<IDictionary<string, object>> PostForm(string path, IDictionary<string, string> form, CancellationToken cancel)
        {
            using (var content = new FormUrlEncodedContent(form))
            using (var response = await http.PostAsync(path, content, cancel).ConfigureAwait(false))
            {
                var body = Json.TryParseObject(await response.Content.ReadAsStringAsync().ConfigureAwait(false));
                if ((int)response.StatusCode == 429)
                    throw new DeviceSignInException("slow_down", "rate limited");
                if (body == null)
                    throw new HttpRequestException("auth answered " + (int)response.StatusCode + " without JSON");
                var error = Json.String(body, "error");
                if (error != null) throw new DeviceSignInException(error, Json.String(body, "error_description"));
                if (!response.IsSuccessStatusCode)
                    throw new HttpRequestException("auth answered " + (int)response.StatusCode);
                return body;
            }
        }

        /// <summary>Step 1: a device code; show UserCode and VerificationUri to the person.</summary>
        public async Task<DeviceCode> StartAsync(CancellationToken cancel = default(CancellationToken))
        {
            var body = await PostForm("v1/device/authorize", new Dictionary<string, string>
            {
                { "client_id", clientId },
                { "client_version", clientVersion },
            }, cancel).ConfigureAwait(false);
            var code = Json.String(body, "device_code");
            var user = Json.String(body, "user_code");
            var uri = Json.String(body, "verification_uri");
            var expires = Json.Integer(body, "expires_in");
            var interval = Json.Integer(body, "interval") ?? 5;
            if (code == null || user == null || uri == null || !expires.HasValue)
                throw new DeviceSignInException("invalid_response", "not a device authorization");
            return new DeviceCode
            {
                Code = code,
                UserCode = user,
                VerificationUri = uri,
                ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(expires.Value),
                Interval = (int)Math.Max(1, interval),
            };
        }

        /// <summary>One poll: the access token once the person approved; null while
        /// authorization_pending or after slow_down (which lengthens code.Interval);
        /// DeviceSignInException for access_denied, expired_token and other errors.</summary>
        public async Task<string> PollOnceAsync(DeviceCode code, CancellationToken cancel = default(CancellationToken))
        {
            IDictionary<string, object> body;
            try
            {
                body = await PostForm("v1/device/token", new Dictionary<string, string>
                {
                    { "grant_type", DeviceCodeGrant },
                    { "device_code", code.Code },
                    { "client_id", clientId },
                }, cancel).ConfigureAwait(false);
            }
            catch (DeviceSignInException error)
            {
                if (error.Error == "authorization_pending") return null;
                if (error.Error == "slow_down")
                {
                    code.Interval += SlowDownSeconds;
                    return null;
                }
                throw;
            }
            return Keep(body);
        }

        /// <summary>Steps 2-3: poll every Interval seconds until the person approves (the
        /// access token), denies or the code expires (DeviceSignInException).</summary>
        public async Task<string> PollAsync(DeviceCode code, CancellationToken cancel = default(CancellationToken))
        {
            while (true)
            {
                if (DateTimeOffset.UtcNow >= code.ExpiresAt)
                    throw new DeviceSignInException("expired_token", "the code expired before it was approved");
                await Delay(TimeSpan.FromSeconds(code.Interval), cancel).ConfigureAwait(false);
                var token = await PollOnceAsync(code, cancel).ConfigureAwait(false);
                if (token != null) return token;
            }
        }

        /// <summary>The whole sign-in: `show` gets the code to display, then this polls.</summary>
        public async Task<string> SignInAsync(Action<DeviceCode> show, CancellationToken cancel = default(CancellationToken))
        {
            var code = await StartAsync(cancel).ConfigureAwait(false);
            show(code);
            return await PollAsync(code, cancel).ConfigureAwait(false);
        }

        /// <summary>A live access token: the one held while it has a minute left, else one
        /// from the stored refresh token (which rotates: the new one replaces it). Null when
        /// there is no refresh token or the sign-in ended (then SignInAsync).</summary>
        public async Task<string> AccessTokenAsync(CancellationToken cancel = default(CancellationToken))
        {
            if (accessToken != null && DateTimeOffset.UtcNow < accessExpires) return accessToken;
            var refresh = tokens.Load();
            if (refresh == null) return null;
            IDictionary<string, object> body;
            try
            {
                body = await PostForm("v1/device/token", new Dictionary<string, string>
                {
                    { "grant_type", "refresh_token" },
                    { "refresh_token", refresh },
                    { "client_id", clientId },
                }, cancel).ConfigureAwait(false);
            }
            catch (DeviceSignInException error)
            {
                if (error.Error != "invalid_grant") throw;
                SignOut();
                return null;
            }
            return Keep(body);
        }

        string Keep(IDictionary<string, object> body)
        {
            var access = Json.String(body, "access_token");
            var refresh = Json.String(body, "refresh_token");
            if (access == null || refresh == null)
                throw new DeviceSignInException("invalid_response", "no access or refresh token");
            // Saved before use: a crash now must not leave only the spent token behind.
            tokens.Save(refresh);
            accessToken = access;
            accessExpires = DateTimeOffset.UtcNow.AddSeconds((Json.Integer(body, "expires_in") ?? 300) - 60);
            return access;
        }

        /// <summary>Forget this machine's sign-in (the refresh token and the access token).</summary>
        public void SignOut()
        {
            tokens.Clear();
            accessToken = null;
        }
    }
}
