// Package export_wasmudf_udf_guest implements the contract's `guest` export with
// the udf package's registry.
package export_wasmudf_udf_guest

import (
	"wasmudf/udf"
	"wasmudf/wasmudf_udf_types"
)

// Describe lists every function the component's code registered.
func Describe() []wasmudf_udf_types.FunctionSignature { return udf.Describe() }
