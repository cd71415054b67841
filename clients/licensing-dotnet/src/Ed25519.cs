// Ed25519 verification through libsodium: .NET Framework 4.8 has no Ed25519 of its own.
// On Windows the add-on ships libsodium.dll (x64) beside its own DLL and calls
// Ed25519.Preload(folder) once (see docs/licensing-client.md); on Mono the
// Tessera.Licensing.dll.config dllmap points "libsodium" at Debian's libsodium.so.23.
using System;
using System.IO;
using System.Runtime.InteropServices;

namespace Tessera.Licensing
{
    public static class Ed25519
    {
        public const int PublicKeyBytes = 32;
        public const int SignatureBytes = 64;

        static readonly object InitLock = new object();
        static bool initialised;

        [DllImport("libsodium", CallingConvention = CallingConvention.Cdecl)]
        static extern int sodium_init();

        [DllImport("libsodium", CallingConvention = CallingConvention.Cdecl)]
        static extern int crypto_sign_verify_detached(
            byte[] signature, byte[] message, ulong messageLength, byte[] publicKey);

        [DllImport("kernel32", SetLastError = true, CharSet = CharSet.Unicode)]
        static extern IntPtr LoadLibrary(string path);

        /// <summary>Windows: load libsodium.dll from the add-on's own folder before the first
        /// verification. NinjaTrader's process does not search an add-on's folder for native
        /// DLLs, and once a module named libsodium.dll is loaded every P/Invoke binds to it.</summary>
        public static void Preload(string folder)
        {
            if (Environment.OSVersion.Platform != PlatformID.Win32NT) return;
            var path = Path.Combine(folder, "libsodium.dll");
            if (LoadLibrary(path) == IntPtr.Zero)
                throw new DllNotFoundException("cannot load " + path + " (error " + Marshal.GetLastWin32Error() + ")");
        }

        static void Initialise()
        {
            if (initialised) return;
            lock (InitLock)
            {
                // 0: initialised now, 1: already; -1: libsodium cannot work here.
                if (sodium_init() < 0) throw new InvalidOperationException("libsodium failed to initialise");
                initialised = true;
            }
        }

        /// <summary>True only for a valid signature; a key or signature of the wrong length is
        /// just invalid, never an exception.</summary>
        public static bool Verify(byte[] publicKey, byte[] message, byte[] signature)
        {
            if (publicKey == null || message == null || signature == null) return false;
            if (publicKey.Length != PublicKeyBytes || signature.Length != SignatureBytes) return false;
            Initialise();
            return crypto_sign_verify_detached(signature, message, (ulong)message.LongLength, publicKey) == 0;
        }
    }
}
