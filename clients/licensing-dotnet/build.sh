#!/usr/bin/env bash
# Build the .NET licensing client with Mono's mcs against the .NET Framework 4.8 reference
# assemblies, then run its NUnit suite. Exits non-zero on a compile error or a failed test.
#
#   ./build.sh            the library and the offline suite (every vector of docs/licensing-client.md)
#   ./build.sh live       the live suite too, against running services (tests/LiveTests.cs
#                         reads their URLs and fixtures from TESSERA_LIVE_*; the pytest module
#                         tests/test_dotnet_client.py starts the services and sets them)
#   ./build.sh library    only the library (build/Tessera.Licensing.dll and its .dll.config)
#
# Needs mcs, mono, nunit-console (Debian: mono-devel, libnunit-cil-dev, nunit-console) and
# libsodium (libsodium23). TESSERA_DOTNET_OUT chooses the output folder (default: build/).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${TESSERA_DOTNET_OUT:-$here/build}"
mode="${1:-test}"
mkdir -p "$out"

# -sdk:4.8 compiles against Mono's 4.8-api reference assemblies: an API newer than
# .NET Framework 4.8 does not compile. C# 6 is what mcs implements fully.
mcs -nologo -sdk:4.8 -langversion:6 -warnaserror+ -optimize+ -target:library \
    -out:"$out/Tessera.Licensing.dll" \
    -r:System.Net.Http.dll -r:System.Web.Extensions.dll -r:System.Security.dll \
    "$here"/src/*.cs
cp "$here/src/Tessera.Licensing.dll.config" "$out/"
[ "$mode" = library ] && exit 0

nunit_dir=/usr/lib/cli/nunit.framework-2.6.3
mcs -nologo -sdk:4.8 -langversion:6 -warnaserror+ -nowarn:1702 -target:library \
    -out:"$out/Tessera.Licensing.Tests.dll" \
    -r:"$out/Tessera.Licensing.dll" -r:"$nunit_dir/nunit.framework.dll" \
    -r:System.Net.Http.dll -r:System.Web.Extensions.dll \
    "$here"/tests/*.cs
cp "$nunit_dir/nunit.framework.dll" "$here/tests/Tessera.Licensing.Tests.dll.config" "$out/"

export TESSERA_VECTORS="${repo}/docs/licensing-client.md"
filter=(-exclude:Live)
[ "$mode" = live ] && filter=()
cd "$out"
# nunit-console's exit code is the number of failed tests (negative for a runner error).
nunit-console -nologo -noshadow -labels "${filter[@]}" -xml="$out/TestResult-$mode.xml" \
    "$out/Tessera.Licensing.Tests.dll"
