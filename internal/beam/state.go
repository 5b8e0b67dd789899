package beam

import jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"

// Terminal reports whether a job in state s will not change any more.
// STOPPED is not among them: Java job servers begin a job's history with
// it.
func Terminal(s jobpb.JobState_Enum) bool {
	switch s {
	case jobpb.JobState_DONE, jobpb.JobState_FAILED, jobpb.JobState_CANCELLED, jobpb.JobState_DRAINED, jobpb.JobState_UPDATED:
		return true
	}
	return false
}
