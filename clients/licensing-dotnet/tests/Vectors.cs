// The published test vectors: the JSON block of docs/licensing-client.md, read where the
// build script says (TESSERA_VECTORS) so the C# suite checks the very text people read.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text.RegularExpressions;
using Tessera.Licensing;

namespace Tessera.Licensing.Tests
{
    /// <summary>A fresh temporary folder for each test (caches, token files), removed after.</summary>
    public abstract class InFolder
    {
        protected string folder;

        [NUnit.Framework.SetUp]
        public void MakeFolder()
        {
            folder = Path.Combine(Path.GetTempPath(), "tessera-dotnet-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(folder);
        }

        [NUnit.Framework.TearDown]
        public void RemoveFolder()
        {
            Directory.Delete(folder, true);
        }
    }

    static class Vectors
    {
        static IDictionary<string, object> all;

        public static IDictionary<string, object> All
        {
            get
            {
                if (all != null) return all;
                var path = Environment.GetEnvironmentVariable("TESSERA_VECTORS");
                if (string.IsNullOrEmpty(path)) throw new InvalidOperationException("TESSERA_VECTORS names no file");
                var match = Regex.Match(File.ReadAllText(path),
                    "<!-- test-vectors:start -->\\s*```json\\s*(.*?)```", RegexOptions.Singleline);
                if (!match.Success) throw new InvalidOperationException("no test-vectors block in " + path);
                all = Json.TryParseObject(match.Groups[1].Value);
                if (all == null) throw new InvalidOperationException("the test-vectors block is not JSON");
                return all;
            }
        }

        public static long Now { get { return Json.Integer(All, "now").Value; } }
        public static string Fingerprint { get { return Json.String(All, "fingerprint"); } }
        public static string MachineId { get { return Json.String(All, "cache_machine_id"); } }
        public static IDictionary<string, object> Jwks { get { return (IDictionary<string, object>)All["jwks"]; } }
        public static IDictionary<string, object> Payload { get { return (IDictionary<string, object>)All["payload"]; } }
        public static KeyRing LeaseKeys { get { return KeyRing.FromJwks(Jwks); } }

        public static List<string> Strings(object value)
        {
            var list = new List<string>();
            foreach (var item in (object[])value) list.Add((string)item);
            return list;
        }

        public static List<string> Pins { get { return Strings(All["pins"]); } }

        /// <summary>The named vector of a group (leases, key_sets, cache).</summary>
        public static IDictionary<string, object> Named(string group, string name)
        {
            foreach (IDictionary<string, object> v in (object[])All[group])
                if ((string)v["name"] == name) return v;
            throw new ArgumentException("no " + group + " vector named " + name);
        }

        /// <summary>The vector names of a group, for TestCaseSource: fixed names, never values
        /// made up at collection time.</summary>
        public static IEnumerable<string> Names(string group)
        {
            foreach (IDictionary<string, object> v in (object[])All[group]) yield return (string)v["name"];
        }
    }
}
