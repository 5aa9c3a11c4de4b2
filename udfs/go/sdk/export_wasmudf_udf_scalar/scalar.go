// Package export_wasmudf_udf_scalar implements the contract's `scalar` export.
package export_wasmudf_udf_scalar

import (
	"wasmudf/udf"
	"wasmudf/wasmudf_udf_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Call evaluates a registered scalar function over one batch.
func Call(function, rows uint32, args []wasmudf_udf_types.Column) witTypes.Result[wasmudf_udf_types.Column, wasmudf_udf_types.UdfError] {
	return udf.Call(function, rows, args)
}
