package submit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/beamctl/beamctl/internal/beam"
)

// Event kinds.
const (
	EventState   = "state"
	EventMessage = "message"
)

// Event is a job state change or a job message.
type Event struct {
	// Time is when it happened, as the job server says, else when it
	// arrived; zero for a message of the past the server gave no time.
	Time time.Time `json:"time,omitzero"`
	// Kind is EventState or EventMessage.
	Kind string `json:"kind"`
	// State is the new state for state events, e.g. "RUNNING".
	State string `json:"state,omitempty"`
	// Severity is the message importance: "debug", "detailed", "info",
	// "warning" or "error".
	Severity string `json:"severity,omitempty"`
	// Text is the message text.
	Text string `json:"text,omitempty"`
	// Cause is an error message of several lines in a few words.
	Cause *Cause `json:"cause,omitempty"`
}

// messageDrainTimeout bounds the wait for the last job messages after the
// job reached a terminal state: runners send the failure cause then.
const messageDrainTimeout = 10 * time.Second

// JobFailedError reports a job that ended FAILED, with the runner's account
// of why.
type JobFailedError struct {
	JobID string
	// Message is the runner's whole account.
	Message string
	// Cause is Message in a few words; nil when the runner sent none.
	Cause *Cause
}

// Error gives the cause of the failure and its fix in one line; Message
// keeps the runner's whole account.
func (e *JobFailedError) Error() string {
	c := e.Cause
	if c == nil {
		c = FailureCause(e.Message)
	}
	if c == nil {
		return fmt.Sprintf("job %s failed; the runner sent no reason", e.JobID)
	}
	return fmt.Sprintf("job %s failed: %s", e.JobID, c)
}

// notStarted reports whether state s, coming after earlier states or not,
// is the STOPPED that Java job servers (Flink's, Spark's) begin a job's
// history with, meaning "not started yet" rather than a stop.
func notStarted(s jobpb.JobState_Enum, afterOthers bool) bool {
	return s == jobpb.JobState_STOPPED && !afterOthers
}

type followItem struct {
	// gen is the opening of the streams the item came from: items of
	// streams closed for a reconnect are dropped.
	gen          int
	fromMessages bool
	ev           Event
	// key identifies a job message, so that one the job server replays
	// after a reconnect is not passed on twice.
	key     uint64
	state   jobpb.JobState_Enum
	isState bool
	err     error
	done    bool
}

// Bounds of the one reconnect of a follow whose streams broke: a short
// pause, so that a job server closing connections on purpose (a restart
// of a proxy, a load balancer's drain) is past it, then a wait for the
// connection, short enough that a job server that died is reported
// promptly.
const (
	reconnectPause = 250 * time.Millisecond
	reconnectWait  = 3 * time.Second
)

// LostJobError is a job whose streams broke, and broke again after one
// reconnect, before it ended: it may still run on the job server. It
// matches ErrUnreachable and its cause with errors.Is.
type LostJobError struct {
	JobID, Endpoint string
	// State is the last state seen.
	State jobpb.JobState_Enum
	Cause error
}

func (e *LostJobError) Error() string {
	return fmt.Sprintf("lost track of job %s on %s: the job server stopped answering (%s); the job may still be running there",
		e.JobID, e.Endpoint, connectionCause(e.Cause))
}

func (e *LostJobError) Unwrap() []error { return []error{ErrUnreachable, e.Cause} }

// messageKey identifies m among a job's messages by all the server says of
// it.
func messageKey(m *jobpb.JobMessage) uint64 {
	h := fnv.New64a()
	for _, s := range []string{m.GetMessageId(), m.GetTime(), m.GetImportance().String(), m.GetMessageText()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// replay recognises the job messages a job server sends again when its
// streams are opened anew: job servers replay the history they keep, from
// its start or from where they trimmed it, before new messages.
type replay struct {
	seen []uint64
	pos  int
	on   bool
}

// add records a message passed on.
func (r *replay) add(key uint64) { r.seen = append(r.seen, key) }

// restart begins recognising a replay.
func (r *replay) restart() { r.pos, r.on = 0, true }

// again reports whether the message with key was passed on before.
func (r *replay) again(key uint64) bool {
	if !r.on {
		return false
	}
	if r.pos == 0 {
		// A trimmed history starts somewhere in what was seen.
		if i := slices.Index(r.seen, key); i >= 0 {
			r.pos = i + 1
			return true
		}
	} else if r.pos < len(r.seen) && r.seen[r.pos] == key {
		r.pos++
		return true
	}
	r.on = false
	return false
}

// broken reports whether err, ending a stream, is a connection that broke
// rather than an answer of the job server.
func broken(err error) bool { return status.Code(err) == codes.Unavailable }

// Follow streams the job's state changes and messages to onEvent (called from
// the calling goroutine, in arrival order) until the job reaches a terminal
// state, and returns that state. A FAILED job also returns a
// *JobFailedError carrying the runner's failure message. Streams that
// break are opened again once, and messages the job server replays then
// are not passed on twice; should they break again, or the job server not
// answer within a few seconds, the error is a *LostJobError.
func Follow(ctx context.Context, conn grpc.ClientConnInterface, jobID string, onEvent func(Event)) (jobpb.JobState_Enum, error) {
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	endpoint := endpointOf(conn)
	client := jobpb.NewJobServiceClient(conn)
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	items := make(chan followItem)
	open := func(gen int) context.CancelFunc {
		gctx, stop := context.WithCancel(sctx)
		emit := func(it followItem) bool {
			it.gen = gen
			select {
			case items <- it:
				return true
			case <-gctx.Done():
				return false
			}
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			stream, err := client.GetStateStream(gctx, &jobpb.GetJobStateRequest{JobId: jobID})
			for err == nil {
				var ev *jobpb.JobStateEvent
				if ev, err = stream.Recv(); err == nil {
					if !emit(followItem{isState: true, state: ev.GetState(), ev: stateEvent(ev)}) {
						return
					}
				}
			}
			emit(followItem{done: true, err: err})
		}()
		go func() {
			defer wg.Done()
			stream, err := client.GetMessageStream(gctx, &jobpb.JobMessagesRequest{JobId: jobID})
			for err == nil {
				var m *jobpb.JobMessagesResponse
				if m, err = stream.Recv(); err != nil {
					break
				}
				it := followItem{fromMessages: true}
				if se := m.GetStateResponse(); se != nil {
					it.isState, it.state, it.ev = true, se.GetState(), stateEvent(se)
				} else {
					it.ev, it.key = messageEvent(m.GetMessageResponse()), messageKey(m.GetMessageResponse())
				}
				if !emit(it) {
					return
				}
			}
			emit(followItem{fromMessages: true, done: true, err: err})
		}()
		return stop
	}
	gen := 0
	stopStreams := open(gen)
	defer func() { stopStreams() }()
	reconnected := false
	var replayed replay

	last := jobpb.JobState_UNSPECIFIED
	seen := map[jobpb.JobState_Enum]bool{}
	var lastError, lastMessage string
	stateDone, messagesDone := false, false
	var drain <-chan time.Time
	finish := func() (jobpb.JobState_Enum, error) {
		if last != jobpb.JobState_FAILED {
			return last, nil
		}
		msg := lastError
		if msg == "" {
			msg = lastMessage
		}
		return last, &JobFailedError{JobID: jobID, Message: msg, Cause: FailureCause(msg)}
	}
	// reconnect opens the streams anew, once, and reports whether it did.
	reconnect := func() bool {
		if reconnected {
			return false
		}
		reconnected = true
		stopStreams()
		pause := time.NewTimer(reconnectPause)
		defer pause.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-pause.C:
		}
		if !waitReady(ctx, conn, reconnectWait) {
			return false
		}
		gen++
		stopStreams = open(gen)
		stateDone, messagesDone = false, false
		replayed.restart()
		return true
	}
	for {
		if beam.Terminal(last) && messagesDone {
			return finish()
		}
		if stateDone && messagesDone {
			return last, fmt.Errorf("job %s on %s: the job server closed its streams before the job finished (last state %s)", jobID, endpoint, last)
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("following job %s: %w", jobID, ctx.Err())
		case <-drain:
			return finish()
		case it := <-items:
			if it.gen != gen {
				continue
			}
			switch {
			case it.done:
				err := it.err
				if errors.Is(err, io.EOF) {
					err = nil
				}
				if it.fromMessages {
					messagesDone = true
				} else {
					stateDone = true
				}
				// A runner without one of the streams still has the other.
				if err != nil && status.Code(err) != codes.Unimplemented && !beam.Terminal(last) {
					if isNotFound(err) {
						return last, notFound(jobID, endpoint)
					}
					if broken(err) {
						if reconnect() {
							continue
						}
						if ctx.Err() != nil {
							return last, fmt.Errorf("following job %s: %w", jobID, ctx.Err())
						}
						return last, &LostJobError{JobID: jobID, Endpoint: endpoint, State: last, Cause: err}
					}
					return last, fmt.Errorf("lost track of job %s on %s: %w", jobID, endpoint, err)
				}
			case it.isState:
				// Both streams report states, each in its own time; a
				// state seen before is the other stream catching up, or
				// the job server's account after a reconnect.
				if seen[it.state] || beam.Terminal(last) {
					continue
				}
				seen[it.state] = true
				if notStarted(it.state, last != jobpb.JobState_UNSPECIFIED) {
					continue
				}
				last = it.state
				onEvent(it.ev)
				if beam.Terminal(last) && drain == nil {
					t := time.NewTimer(messageDrainTimeout)
					defer t.Stop()
					drain = t.C
				}
			default:
				if replayed.again(it.key) {
					continue
				}
				replayed.add(it.key)
				onEvent(it.ev)
				if it.ev.Severity == "error" {
					lastError = it.ev.Text
				}
				lastMessage = it.ev.Text
			}
		}
	}
}

func stateEvent(e *jobpb.JobStateEvent) Event {
	t := time.Now()
	if e.GetTimestamp() != nil {
		t = e.GetTimestamp().AsTime()
	}
	return Event{Time: t, Kind: EventState, State: e.GetState().String()}
}

func messageEvent(m *jobpb.JobMessage) Event {
	e := pastMessageEvent(m)
	if e.Time.IsZero() {
		// Followed as it happens: it arrived about when it was sent.
		e.Time = time.Now()
	}
	return e
}

// pastMessageEvent is a message of the job's history: its time is the
// server's, or unknown.
func pastMessageEvent(m *jobpb.JobMessage) Event {
	var t time.Time
	if m.GetTime() != "" {
		if pt, err := time.Parse(time.RFC3339Nano, m.GetTime()); err == nil {
			t = pt
		}
	}
	e := Event{Time: t, Kind: EventMessage, Severity: severity(m.GetImportance()), Text: m.GetMessageText()}
	// A one-line message is its own cause.
	if e.Severity == "error" && strings.Contains(strings.TrimSpace(e.Text), "\n") {
		e.Cause = FailureCause(e.Text)
	}
	return e
}

func severity(i jobpb.JobMessage_MessageImportance) string {
	switch i {
	case jobpb.JobMessage_JOB_MESSAGE_DEBUG:
		return "debug"
	case jobpb.JobMessage_JOB_MESSAGE_DETAILED:
		return "detailed"
	case jobpb.JobMessage_JOB_MESSAGE_WARNING:
		return "warning"
	case jobpb.JobMessage_JOB_MESSAGE_ERROR:
		return "error"
	default:
		return "info"
	}
}

// isNotFound recognises an unknown job id: by status code, or by text for
// job servers (prism among them) that answer with code Unknown.
func isNotFound(err error) bool {
	if status.Code(err) == codes.NotFound {
		return true
	}
	msg := strings.ToLower(status.Convert(err).Message())
	return strings.Contains(msg, "not found") || strings.Contains(msg, "unknown job")
}
