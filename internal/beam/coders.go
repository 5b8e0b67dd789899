package beam

// Coder URNs of the Beam model, and the Go SDK's custom coder, whose
// payload is a base64 CustomCoder of the SDK's own protos.
const (
	BytesCoderURN               = "beam:coder:bytes:v1"
	BoolCoderURN                = "beam:coder:bool:v1"
	VarIntCoderURN              = "beam:coder:varint:v1"
	DoubleCoderURN              = "beam:coder:double:v1"
	StringCoderURN              = "beam:coder:string_utf8:v1"
	LengthPrefixCoderURN        = "beam:coder:length_prefix:v1"
	KVCoderURN                  = "beam:coder:kv:v1"
	IterableCoderURN            = "beam:coder:iterable:v1"
	StateBackedIterableCoderURN = "beam:coder:state_backed_iterable:v1"
	WindowedValueCoderURN       = "beam:coder:windowed_value:v1"
	ParamWindowedValueCoderURN  = "beam:coder:param_windowed_value:v1"
	TimerCoderURN               = "beam:coder:timer:v1"
	RowCoderURN                 = "beam:coder:row:v1"
	NullableCoderURN            = "beam:coder:nullable:v1"
	ShardedKeyCoderURN          = "beam:coder:sharded_key:v1"
	GlobalWindowCoderURN        = "beam:coder:global_window:v1"
	IntervalWindowCoderURN      = "beam:coder:interval_window:v1"
	GoCustomCoderURN            = "beam:go:coder:custom:v1"
)

// Window function URNs.
const (
	GlobalWindowsURN  = "beam:window_fn:global_windows:v1"
	FixedWindowsURN   = "beam:window_fn:fixed_windows:v1"
	SlidingWindowsURN = "beam:window_fn:sliding_windows:v1"
	SessionWindowsURN = "beam:window_fn:session_windows:v1"
)
