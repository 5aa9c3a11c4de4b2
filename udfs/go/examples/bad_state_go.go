// An aggregate whose state holds a string: states travel between instances as
// bytes, so the server refuses the component when it loads it, with the reason.
package main

import "wasmudf/udf"

func init() {
	udf.Aggregate2[string, int64, string, longest]("go_longest")
}

type longest struct{ Best string }

func (l *longest) Update(s string, _ int64) error {
	if len(s) > len(l.Best) {
		l.Best = s
	}
	return nil
}
func (l *longest) Merge(o *longest)       {}
func (l *longest) Finish() (string, bool) { return l.Best, true }
