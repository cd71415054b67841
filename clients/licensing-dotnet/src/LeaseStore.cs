// The lease cache on disk, integrity-protected and bound to the machine, with the
// clock-rollback guard (docs/licensing-client.md, "The cache" and "Clock rollback"). The
// record format is the reference client's, byte for byte: a cache either client wrote
// verifies in the other.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Win32;

namespace Tessera.Licensing
{
    /// <summary>The lease keys a stored key set vouches for and until when it vouched.</summary>
    public sealed class Vouched
    {
        public KeyRing Keys { get; private set; }
        public long Until { get; private set; }

        public Vouched(KeyRing keys, long until) { Keys = keys; Until = until; }
    }

    public sealed class CachedLease
    {
        public string Lease { get; internal set; }
        public string KeySet { get; internal set; }
        public long KeySetVersion { get; internal set; }
        public long SignedHighWater { get; internal set; }
        public long LocalHighWater { get; internal set; }
    }

    public sealed class LeaseStore
    {
        public const string Format = "tessera-lease-cache-v1";

        readonly byte[] key;

        public string Path { get; private set; }

        /// <summary>`machineId` defaults to the OS's; `appSecret` (optional, recommended) is a
        /// secret the app keeps outside this file (on Windows DPAPI-protected), so the MAC key
        /// cannot be derived from the machine id alone.</summary>
        public LeaseStore(string path, string machineId = null, byte[] appSecret = null)
        {
            Path = path;
            key = CacheKey(machineId ?? DefaultMachineId(), appSecret);
        }

        /// <summary>HMAC-SHA256(key = app secret or the format name, message = format LF machine id).</summary>
        public static byte[] CacheKey(string machineId, byte[] appSecret = null)
        {
            var secret = appSecret != null && appSecret.Length > 0 ? appSecret : Encoding.UTF8.GetBytes(Format);
            return Bytes.HmacSha256(secret, Encoding.UTF8.GetBytes(Format + "\n" + machineId));
        }

        /// <summary>Windows' MachineGuid, else systemd's /etc/machine-id, else the host name.</summary>
        public static string DefaultMachineId()
        {
            if (Environment.OSVersion.Platform == PlatformID.Win32NT)
            {
                // The 64-bit view: a 32-bit process would otherwise read the WOW64 copy.
                using (var hklm = RegistryKey.OpenBaseKey(RegistryHive.LocalMachine, RegistryView.Registry64))
                using (var crypto = hklm.OpenSubKey(@"SOFTWARE\Microsoft\Cryptography"))
                {
                    var guid = crypto == null ? null : crypto.GetValue("MachineGuid") as string;
                    if (!string.IsNullOrEmpty(guid)) return guid;
                }
            }
            foreach (var path in new[] { "/etc/machine-id", "/var/lib/dbus/machine-id" })
            {
                try
                {
                    var value = File.ReadAllText(path, Encoding.ASCII).Trim();
                    if (value.Length > 0) return value;
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
            return "host-" + Environment.MachineName;
        }

        string Mac(IDictionary<string, object> record)
        {
            var body = new Dictionary<string, object>(StringComparer.Ordinal);
            foreach (var pair in record) if (pair.Key != "mac") body[pair.Key] = pair.Value;
            return Bytes.Hex(Bytes.HmacSha256(key, Json.Utf8(Json.Canonical(body))));
        }

        LeaseException Discard(string why)
        {
            Clear();
            return new LeaseException("CACHE_TAMPERED", why);
        }

        /// <summary>The record, null when there is none; CACHE_TAMPERED (and the file is
        /// deleted) when it is unreadable, fails its MAC or holds impossible values.</summary>
        public CachedLease Load()
        {
            string text;
            try
            {
                text = File.ReadAllText(Path, Encoding.UTF8);
            }
            catch (FileNotFoundException) { return null; }
            catch (DirectoryNotFoundException) { return null; }
            catch (IOException error) { throw Discard("unreadable: " + error.Message); }
            catch (UnauthorizedAccessException error) { throw Discard("unreadable: " + error.Message); }
            var record = Json.TryParseObject(text);
            if (record == null || Json.String(record, "format") != Format) throw Discard("not a lease cache");
            string mac;
            try
            {
                mac = Mac(record);
            }
            catch (ArgumentException)
            {
                throw Discard("holds a value no cache record has");
            }
            if (!Bytes.FixedTimeEquals(mac, Json.String(record, "mac")))
                throw Discard("integrity check failed (edited, or from another machine)");
            var lease = Json.String(record, "lease");
            var keySet = Json.Get(record, "key_set");
            var version = Json.Get(record, "key_set_version") == null ? 0 : Json.Integer(record, "key_set_version");
            if (lease == null || (keySet != null && !(keySet is string)) || !version.HasValue)
                throw Discard("missing or mistyped field");
            return new CachedLease
            {
                Lease = lease,
                KeySet = (string)keySet,
                KeySetVersion = version.Value,
                SignedHighWater = Time(record, "signed_high_water"),
                LocalHighWater = Time(record, "local_high_water"),
            };
        }

        long Time(IDictionary<string, object> record, string name)
        {
            var value = Json.Get(record, name);
            var time = value is bool ? null : Json.AsInteger(value);
            if (!time.HasValue || time.Value <= 0) throw Discard(name + " missing or not a positive time");
            return time.Value;
        }

        /// <summary>The highest key-set version this machine accepted (0 if none or discarded).</summary>
        public long AcceptedVersion()
        {
            try
            {
                var cached = Load();
                return cached == null ? 0 : cached.KeySetVersion;
            }
            catch (LeaseException)
            {
                return 0;
            }
        }

        void Write(string lease, string keySet, long version, long signed, long local)
        {
            var record = new Dictionary<string, object>(StringComparer.Ordinal)
            {
                { "format", Format },
                { "lease", lease },
                { "key_set", keySet },
                { "key_set_version", version },
                { "signed_high_water", signed },
                { "local_high_water", local },
            };
            record["mac"] = Mac(record);
            var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path));
            Directory.CreateDirectory(folder);
            // Atomic replace: a crash mid-write must not leave a torn cache.
            var tmp = System.IO.Path.Combine(folder, ".lease-" + Guid.NewGuid().ToString("N"));
            File.WriteAllText(tmp, Json.Canonical(record), new UTF8Encoding(false));
            if (File.Exists(Path)) File.Replace(tmp, Path, null);
            else File.Move(tmp, Path);
        }

        /// <summary>Keep a lease just verified online. `signedTime`: the server's signed
        /// `created` of the answer that carried it. The signed mark only grows; the local one
        /// restarts from it (the server's time is the authority: a clock once set too far
        /// ahead must not lock the app out of offline use for good).</summary>
        public void Save(Lease lease, string keySet, long keySetVersion, long signedTime)
        {
            CachedLease old;
            try
            {
                old = Load();
            }
            catch (LeaseException)
            {
                old = null;
            }
            long signed = Math.Max(Math.Max(signedTime, lease.IssuedAt), old != null ? old.SignedHighWater : 0);
            long version = Math.Max(keySetVersion, old != null ? old.KeySetVersion : 0);
            Write(lease.Token, keySet, version, signed, signed);
        }

        /// <summary>The cached lease if it holds offline on this machine at `now`;
        /// LeaseException otherwise (CACHE_TAMPERED deletes the file).</summary>
        public Lease Check(string fingerprint, long now, Func<string, Vouched> vouch, int skew = Lease.SkewSeconds)
        {
            var cached = Load();
            if (cached == null) throw new LeaseException("NO_LEASE", "no cached lease: call home");
            Vouched vouched;
            try
            {
                vouched = vouch(cached.KeySet);
            }
            catch (LeaseException error)
            {
                throw Discard("key set: " + error.Message);
            }
            var lease = Lease.Verify(cached.Lease, vouched.Keys, fingerprint, now, skew);
            if (lease.IssuedAt >= vouched.Until) throw Discard("the lease was issued after its key set expired");
            if (cached.SignedHighWater < lease.IssuedAt) throw Discard("high-water mark below the lease's own signed time");
            long floor = Math.Max(Math.Max(cached.SignedHighWater, cached.LocalHighWater), lease.IssuedAt);
            if (now < floor - skew) throw new LeaseException("CLOCK_ROLLED_BACK", "this machine's clock went backwards");
            if (now > cached.LocalHighWater)
                Write(cached.Lease, cached.KeySet, cached.KeySetVersion, cached.SignedHighWater, now);
            return lease;
        }

        public void Clear()
        {
            try
            {
                File.Delete(Path);
            }
            catch (DirectoryNotFoundException) { }
        }
    }
}
