module wasmudf

go 1.27.1

require go.bytecodealliance.org/pkg v0.4.0

// Vendored (see regenerate.sh): builds need no module proxy.
replace go.bytecodealliance.org/pkg => ./third_party/go-pkg
