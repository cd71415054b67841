// License keys: 24 Crockford base32 symbols and a Luhn mod 32 check symbol, in five groups
// of five. Check a typed key here, before any call, so a typo never costs a round trip.
using System.Text;

namespace Tessera.Licensing
{
    public static class KeyFormat
    {
        public const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        const int Length = 25;

        /// <summary>The canonical 25 symbols, or null when `text` is not a well-formed key.</summary>
        public static string Normalise(string text)
        {
            if (text == null) return null;
            var compact = new StringBuilder(Length);
            foreach (char raw in text)
            {
                if (char.IsWhiteSpace(raw) || raw == '-') continue;
                char c = char.ToUpperInvariant(raw);
                // Crockford's reading of look-alikes, so a key typed from paper still matches.
                if (c == 'O') c = '0';
                else if (c == 'I' || c == 'L') c = '1';
                if (Alphabet.IndexOf(c) < 0) return null;
                compact.Append(c);
            }
            if (compact.Length != Length) return null;
            var key = compact.ToString();
            return LuhnSum(key, false) % Alphabet.Length == 0 ? key : null;
        }

        public static bool IsWellFormed(string text) { return Normalise(text) != null; }

        /// <summary>The check symbol for 24 payload symbols.</summary>
        public static char CheckSymbol(string payload)
        {
            int n = Alphabet.Length;
            return Alphabet[(n - LuhnSum(payload, true) % n) % n];
        }

        public static string Display(string canonical)
        {
            var output = new StringBuilder();
            for (int i = 0; i < canonical.Length; i += 5)
            {
                if (i > 0) output.Append('-');
                output.Append(canonical, i, System.Math.Min(5, canonical.Length - i));
            }
            return output.ToString();
        }

        // Luhn mod N from the rightmost symbol leftwards, doubling every other one.
        static int LuhnSum(string symbols, bool doubleFirst)
        {
            int n = Alphabet.Length, sum = 0;
            bool doubled = doubleFirst;
            for (int i = symbols.Length - 1; i >= 0; i--)
            {
                int v = Alphabet.IndexOf(symbols[i]) * (doubled ? 2 : 1);
                sum += v / n + v % n;
                doubled = !doubled;
            }
            return sum;
        }
    }
}
