// Base64url and the small JSON needs of the client, on .NET Framework 4.8's own library
// (System.Web.Extensions' JavaScriptSerializer), so the add-on ships no JSON package.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Web.Script.Serialization;

namespace Tessera.Licensing
{
    public static class Base64Url
    {
        public static string Encode(byte[] data)
        {
            return Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        }

        /// <summary>The bytes, or null when the text is not base64url (never an exception).</summary>
        public static byte[] TryDecode(string text)
        {
            if (text == null) return null;
            foreach (char c in text)
            {
                bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
                if (!ok) return null;
            }
            // A length of 1 mod 4 cannot come from any byte string.
            if (text.Length % 4 == 1) return null;
            string padded = text.Replace('-', '+').Replace('_', '/');
            padded = padded.PadRight(padded.Length + (4 - padded.Length % 4) % 4, '=');
            try
            {
                return Convert.FromBase64String(padded);
            }
            catch (FormatException)
            {
                return null;
            }
        }
    }

    public static class Json
    {
        /// <summary>Objects as IDictionary&lt;string, object&gt;, arrays as object[], numbers as
        /// int, long or decimal; null when the text is not JSON.</summary>
        public static object TryParse(string text)
        {
            if (text == null) return null;
            try
            {
                var serializer = new JavaScriptSerializer { MaxJsonLength = 1 << 20 };
                return serializer.DeserializeObject(text);
            }
            catch (ArgumentException)
            {
                return null;
            }
            catch (InvalidOperationException)
            {
                return null;
            }
        }

        public static IDictionary<string, object> TryParseObject(string text)
        {
            return TryParse(text) as IDictionary<string, object>;
        }

        public static object Get(IDictionary<string, object> obj, string name)
        {
            object value;
            return obj != null && obj.TryGetValue(name, out value) ? value : null;
        }

        public static string String(IDictionary<string, object> obj, string name)
        {
            return Get(obj, name) as string;
        }

        /// <summary>An integer member (a JSON boolean or fraction is not one); null otherwise.</summary>
        public static long? Integer(IDictionary<string, object> obj, string name)
        {
            return AsInteger(Get(obj, name));
        }

        public static long? AsInteger(object value)
        {
            if (value is int) return (int)value;
            if (value is long) return (long)value;
            if (value is decimal)
            {
                decimal d = (decimal)value;
                if (decimal.Truncate(d) == d && d >= long.MinValue && d <= long.MaxValue) return (long)d;
            }
            return null;
        }

        public static object[] Array(IDictionary<string, object> obj, string name)
        {
            var value = Get(obj, name);
            if (value is object[]) return (object[])value;
            var list = value as ArrayList;
            return list != null ? list.ToArray() : null;
        }

        /// <summary>Canonical JSON as the reference client writes it (Python's
        /// json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)): the bytes a
        /// cache record's MAC covers. Strings, integers, booleans, null, lists and objects.</summary>
        public static string Canonical(object value)
        {
            var output = new StringBuilder();
            WriteCanonical(output, value);
            return output.ToString();
        }

        static void WriteCanonical(StringBuilder output, object value)
        {
            if (value == null) { output.Append("null"); return; }
            if (value is bool) { output.Append((bool)value ? "true" : "false"); return; }
            var integer = AsInteger(value);
            if (integer.HasValue) { output.Append(integer.Value.ToString(CultureInfo.InvariantCulture)); return; }
            if (value is decimal) { output.Append(((decimal)value).ToString(CultureInfo.InvariantCulture)); return; }
            var text = value as string;
            if (text != null) { WriteString(output, text); return; }
            var obj = value as IDictionary<string, object>;
            if (obj != null)
            {
                var names = new List<string>(obj.Keys);
                names.Sort(CompareCodePoints);
                output.Append('{');
                for (int i = 0; i < names.Count; i++)
                {
                    if (i > 0) output.Append(',');
                    WriteString(output, names[i]);
                    output.Append(':');
                    WriteCanonical(output, obj[names[i]]);
                }
                output.Append('}');
                return;
            }
            var items = value as IEnumerable;
            if (items != null)
            {
                output.Append('[');
                bool first = true;
                foreach (var item in items)
                {
                    if (!first) output.Append(',');
                    first = false;
                    WriteCanonical(output, item);
                }
                output.Append(']');
                return;
            }
            throw new ArgumentException("not a JSON value: " + value.GetType().Name);
        }

        // Python sorts keys by code point; ordinal UTF-16 order differs only past the BMP,
        // which no key of ours uses.
        static int CompareCodePoints(string a, string b)
        {
            return string.CompareOrdinal(a, b);
        }

        static void WriteString(StringBuilder output, string text)
        {
            output.Append('"');
            foreach (char c in text)
            {
                switch (c)
                {
                    case '"': output.Append("\\\""); break;
                    case '\\': output.Append("\\\\"); break;
                    case '\n': output.Append("\\n"); break;
                    case '\r': output.Append("\\r"); break;
                    case '\t': output.Append("\\t"); break;
                    case '\b': output.Append("\\b"); break;
                    case '\f': output.Append("\\f"); break;
                    default:
                        if (c < 0x20) output.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else output.Append(c);
                        break;
                }
            }
            output.Append('"');
        }

        public static byte[] Utf8(string text)
        {
            return new UTF8Encoding(false).GetBytes(text);
        }
    }

    static class Bytes
    {
        public static byte[] Sha256(byte[] data)
        {
            using (var sha = SHA256.Create()) return sha.ComputeHash(data);
        }

        public static byte[] HmacSha256(byte[] key, byte[] data)
        {
            using (var hmac = new HMACSHA256(key)) return hmac.ComputeHash(data);
        }

        public static string Hex(byte[] data)
        {
            var output = new StringBuilder(data.Length * 2);
            foreach (var b in data) output.Append(b.ToString("x2", CultureInfo.InvariantCulture));
            return output.ToString();
        }

        /// <summary>Equal strings, in a time that does not depend on where they differ.</summary>
        public static bool FixedTimeEquals(string a, string b)
        {
            if (a == null || b == null || a.Length != b.Length) return false;
            int diff = 0;
            for (int i = 0; i < a.Length; i++) diff |= a[i] ^ b[i];
            return diff == 0;
        }
    }
}
