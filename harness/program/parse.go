package program

import "github.com/prometheus/prometheus/promql/parser"

// promql is the one PromQL parser of the harness's program checks, with default options
// (the function set Prometheus 2.x operators have).
var promql = parser.NewParser(parser.Options{})
