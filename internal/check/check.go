// Package check is the shape of a health check's outcome, shared by the
// packages that own each check and by beamctl doctor, which runs them.
package check

// Status is how a check came out.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's outcome: what was checked, what was found and,
// when it is not ok, what to do.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Pass, Warning and Failure build Results.
func Pass(check, detail string) Result { return Result{Check: check, Status: OK, Detail: detail} }

func Warning(check, detail, fix string) Result {
	return Result{Check: check, Status: Warn, Detail: detail, Fix: fix}
}

func Failure(check, detail, fix string) Result {
	return Result{Check: check, Status: Fail, Detail: detail, Fix: fix}
}
