package export_wasmudf_udf_aggregate

import (
	"errors"
	"runtime"

	"wasmudf/udf"
	"wasmudf/wasmudf_udf_aggregate"
	"wasmudf/wasmudf_udf_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Groups is the contract's `groups` resource: the states of one aggregate.
type Groups struct {
	handle int32
	pinner runtime.Pinner
	groups udf.Groups // nil for an unknown function
}

type unit = witTypes.Unit
type udfError = wasmudf_udf_types.UdfError

// Info describes a registered aggregate.
func Info(function uint32) witTypes.Result[wasmudf_udf_aggregate.AggregateInfo, udfError] {
	return udf.Info(function)
}

// MakeGroups is the resource's constructor.
func MakeGroups(function uint32) *Groups { return &Groups{groups: udf.NewGroups(function)} }

// OnDrop is called when the host drops the resource.
func (g *Groups) OnDrop() { g.groups = nil }

var errUnknown = errors.New("no such aggregate")

func done(err error) witTypes.Result[unit, udfError] {
	if err != nil {
		return witTypes.Err[unit](udf.Failure(err))
	}
	return witTypes.Ok[unit, udfError](unit{})
}

// Update adds rows to groups.
func (g *Groups) Update(args []wasmudf_udf_types.Column, groups []uint32, total uint32) witTypes.Result[unit, udfError] {
	if g.groups == nil {
		return done(errUnknown)
	}
	return done(g.groups.Update(args, groups, total))
}

// Retract removes rows from groups.
func (g *Groups) Retract(args []wasmudf_udf_types.Column, groups []uint32, total uint32) witTypes.Result[unit, udfError] {
	if g.groups == nil {
		return done(errUnknown)
	}
	return done(g.groups.Retract(args, groups, total))
}

// Merge adds intermediate states to groups.
func (g *Groups) Merge(states []wasmudf_udf_types.Column, groups []uint32, total uint32) witTypes.Result[unit, udfError] {
	if g.groups == nil {
		return done(errUnknown)
	}
	return done(g.groups.Merge(states, groups, total))
}

// State is the intermediate state of the emitted groups.
func (g *Groups) State(emit wasmudf_udf_aggregate.EmitTo) witTypes.Result[[]wasmudf_udf_types.Column, udfError] {
	if g.groups == nil {
		return witTypes.Err[[]wasmudf_udf_types.Column](udf.Failure(errUnknown))
	}
	cols, err := g.groups.State(emit)
	if err != nil {
		return witTypes.Err[[]wasmudf_udf_types.Column](udf.Failure(err))
	}
	return witTypes.Ok[[]wasmudf_udf_types.Column, udfError](cols)
}

// Evaluate is the final value of the emitted groups.
func (g *Groups) Evaluate(emit wasmudf_udf_aggregate.EmitTo) witTypes.Result[wasmudf_udf_types.Column, udfError] {
	if g.groups == nil {
		return witTypes.Err[wasmudf_udf_types.Column](udf.Failure(errUnknown))
	}
	col, err := g.groups.Evaluate(emit)
	if err != nil {
		return witTypes.Err[wasmudf_udf_types.Column](udf.Failure(err))
	}
	return witTypes.Ok[wasmudf_udf_types.Column, udfError](col)
}
