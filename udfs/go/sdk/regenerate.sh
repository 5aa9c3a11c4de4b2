#!/usr/bin/env bash
# Regenerates the committed bindings (wit-bindgen go 0.63.0: `cargo install
# wit-bindgen-cli@0.63.0`) and the vendored runtime package they import
# (go.bytecodealliance.org/pkg, from the same crate: Go's module proxy is not
# reachable from every build machine, and builds must work offline).
#
# The generated module is `wit_component`; it is renamed `wasmudf` so that UDF code
# imports the SDK as "wasmudf/udf".
set -euo pipefail
cd "$(dirname "$0")"
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
wit-bindgen go -w udfs --out-dir "$gen" ../../../engine/wit/udf.wit
for f in $(cd "$gen" && find . -name '*.go' -o -name '*.s'); do
    mkdir -p "$(dirname "$f")"
    sed 's#"wit_component/#"wasmudf/#' "$gen/$f" > "$f"
done
crate=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wit-bindgen-go-0.63.0 | head -1)
rm -rf third_party/go-pkg
mkdir -p third_party/go-pkg/wit
cp "$crate/src/pkg/LICENSE" "$crate/src/pkg/go.mod" third_party/go-pkg/
cp -r "$crate/src/pkg/wit/runtime" "$crate/src/pkg/wit/types" "$crate/src/pkg/wit/async" third_party/go-pkg/wit/
gofmt -w .
