package graph

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	v1pb "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx/v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"

	"github.com/beamctl/beamctl/internal/beam"
)

// leafCoders name the coders of one Go type each.
var leafCoders = map[string]string{
	beam.BytesCoderURN:          "[]byte",
	beam.BoolCoderURN:           "bool",
	beam.VarIntCoderURN:         "int64",
	beam.DoubleCoderURN:         "float64",
	beam.StringCoderURN:         "string",
	beam.GlobalWindowCoderURN:   "GlobalWindow",
	beam.IntervalWindowCoderURN: "IntervalWindow",
}

// wrapperCoders name the coders of a type built from their components.
var wrapperCoders = map[string]string{
	beam.KVCoderURN:                  "KV",
	beam.IterableCoderURN:            "Iterable",
	beam.StateBackedIterableCoderURN: "Iterable",
	beam.WindowedValueCoderURN:       "WindowedValue",
	beam.ParamWindowedValueCoderURN:  "WindowedValue",
	beam.TimerCoderURN:               "Timer",
	beam.NullableCoderURN:            "Nullable",
	beam.ShardedKeyCoderURN:          "ShardedKey",
}

// maxCoderDepth bounds the nesting a coder name follows: a pipeline whose
// coders refer to themselves is malformed, and still gets a name.
const maxCoderDepth = 32

// CoderName words the coder id of coders as the element type it encodes,
// e.g. KV<string,int>: length prefixes are left out, being a detail of the
// wire, and a Go type's custom coder is named by the type.
func CoderName(coders map[string]*pipepb.Coder, id string) string {
	return coderName(coders, id, 0)
}

func coderName(coders map[string]*pipepb.Coder, id string, depth int) string {
	c, ok := coders[id]
	if !ok {
		return "?" + id
	}
	if depth > maxCoderDepth {
		return "…"
	}
	urn := c.GetSpec().GetUrn()
	comps := make([]string, len(c.GetComponentCoderIds()))
	for i, cid := range c.GetComponentCoderIds() {
		comps[i] = coderName(coders, cid, depth+1)
	}
	if name, ok := leafCoders[urn]; ok && len(comps) == 0 {
		return name
	}
	if name, ok := wrapperCoders[urn]; ok {
		return name + "<" + strings.Join(comps, ",") + ">"
	}
	switch urn {
	case beam.LengthPrefixCoderURN:
		if len(comps) == 1 {
			return comps[0]
		}
	case beam.RowCoderURN:
		var s pipepb.Schema
		if err := proto.Unmarshal(c.GetSpec().GetPayload(), &s); err == nil {
			return schemaName(&s, 0)
		}
		return "Row"
	case beam.GoCustomCoderURN:
		if name, ok := customCoderName(c.GetSpec().GetPayload()); ok {
			return name
		}
	}
	if len(comps) > 0 {
		return urn + "<" + strings.Join(comps, ",") + ">"
	}
	return urn
}

// customCoderName names the Go type a Go SDK custom coder encodes: its
// payload is a base64 CustomCoder.
func customCoderName(payload []byte) (string, bool) {
	data, err := base64.StdEncoding.DecodeString(string(payload))
	if err != nil {
		return "", false
	}
	var cc v1pb.CustomCoder
	if err := proto.Unmarshal(data, &cc); err != nil {
		return "", false
	}
	if t := cc.GetType(); t != nil {
		if name := goTypeName(t, 0); name != "" {
			return name, true
		}
	}
	return cc.GetName(), cc.GetName() != ""
}

// goKinds name the Go SDK's kinds of types that are named by their kind.
var goKinds = map[v1pb.Type_Kind]string{
	v1pb.Type_BOOL: "bool", v1pb.Type_INT: "int", v1pb.Type_INT8: "int8", v1pb.Type_INT16: "int16",
	v1pb.Type_INT32: "int32", v1pb.Type_INT64: "int64", v1pb.Type_UINT: "uint", v1pb.Type_UINT8: "uint8",
	v1pb.Type_UINT16: "uint16", v1pb.Type_UINT32: "uint32", v1pb.Type_UINT64: "uint64",
	v1pb.Type_STRING: "string", v1pb.Type_FLOAT32: "float32", v1pb.Type_FLOAT64: "float64",
}

// goTypeName words a Go SDK type as Go would, a named type by its package
// name and type name.
func goTypeName(t *v1pb.Type, depth int) string {
	if depth > maxCoderDepth {
		return "…"
	}
	if name, ok := goKinds[t.GetKind()]; ok {
		return name
	}
	switch t.GetKind() {
	case v1pb.Type_SLICE:
		return "[]" + goTypeName(t.GetElement(), depth+1)
	case v1pb.Type_PTR:
		return "*" + goTypeName(t.GetElement(), depth+1)
	case v1pb.Type_CHAN:
		return "chan " + goTypeName(t.GetElement(), depth+1)
	case v1pb.Type_EXTERNAL:
		return shortTypeName(t.GetExternalKey())
	case v1pb.Type_SPECIAL:
		return t.GetSpecial().String()
	case v1pb.Type_STRUCT:
		fields := make([]string, len(t.GetFields()))
		for i, f := range t.GetFields() {
			fields[i] = f.GetName() + " " + goTypeName(f.GetType(), depth+1)
		}
		return "struct{" + strings.Join(fields, "; ") + "}"
	case v1pb.Type_FUNC:
		return "func"
	}
	return ""
}

// shortTypeName keeps the package name and type name of a type's full
// name: github.com/a/b/fileio.FileMetadata is fileio.FileMetadata.
func shortTypeName(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

var atomicNames = map[pipepb.AtomicType]string{
	pipepb.AtomicType_BYTE: "byte", pipepb.AtomicType_INT16: "int16", pipepb.AtomicType_INT32: "int32",
	pipepb.AtomicType_INT64: "int64", pipepb.AtomicType_FLOAT: "float32", pipepb.AtomicType_DOUBLE: "float64",
	pipepb.AtomicType_STRING: "string", pipepb.AtomicType_BOOLEAN: "bool", pipepb.AtomicType_BYTES: "[]byte",
}

// schemaName words a row schema as its fields: Row{Path string, Size int64}.
func schemaName(s *pipepb.Schema, depth int) string {
	fields := make([]string, len(s.GetFields()))
	for i, f := range s.GetFields() {
		fields[i] = f.GetName() + " " + fieldTypeName(f.GetType(), depth+1)
	}
	return "Row{" + strings.Join(fields, ", ") + "}"
}

func fieldTypeName(t *pipepb.FieldType, depth int) string {
	if depth > maxCoderDepth {
		return "…"
	}
	var name string
	switch {
	case t.GetArrayType() != nil:
		name = "[]" + fieldTypeName(t.GetArrayType().GetElementType(), depth+1)
	case t.GetIterableType() != nil:
		name = "Iterable<" + fieldTypeName(t.GetIterableType().GetElementType(), depth+1) + ">"
	case t.GetMapType() != nil:
		name = "map[" + fieldTypeName(t.GetMapType().GetKeyType(), depth+1) + "]" + fieldTypeName(t.GetMapType().GetValueType(), depth+1)
	case t.GetRowType() != nil:
		name = schemaName(t.GetRowType().GetSchema(), depth+1)
	case t.GetLogicalType() != nil:
		// A logical type's URN is the Go SDK's name for the type.
		name = shortTypeName(t.GetLogicalType().GetUrn())
	default:
		name = atomicNames[t.GetAtomicType()]
		if name == "" {
			name = t.GetAtomicType().String()
		}
	}
	if t.GetNullable() {
		return "*" + name
	}
	return name
}

// windowingName words a windowing strategy: its window function, and its
// trigger and accumulation when they are not the defaults.
func windowingName(w *pipepb.WindowingStrategy) string {
	if w == nil {
		return ""
	}
	fn := w.GetWindowFn()
	name := fn.GetUrn()
	switch fn.GetUrn() {
	case beam.GlobalWindowsURN:
		name = "global"
	case beam.FixedWindowsURN:
		var p pipepb.FixedWindowsPayload
		if proto.Unmarshal(fn.GetPayload(), &p) == nil {
			name = fmt.Sprintf("fixed(%v)", p.GetSize().AsDuration())
		}
	case beam.SlidingWindowsURN:
		var p pipepb.SlidingWindowsPayload
		if proto.Unmarshal(fn.GetPayload(), &p) == nil {
			name = fmt.Sprintf("sliding(%v every %v)", p.GetSize().AsDuration(), p.GetPeriod().AsDuration())
		}
	case beam.SessionWindowsURN:
		var p pipepb.SessionWindowsPayload
		if proto.Unmarshal(fn.GetPayload(), &p) == nil {
			name = fmt.Sprintf("sessions(%v)", p.GetGapSize().AsDuration())
		}
	}
	if t := w.GetTrigger(); t != nil {
		if which := t.ProtoReflect().WhichOneof(t.ProtoReflect().Descriptor().Oneofs().ByName("trigger")); which != nil && which.Name() != "default" {
			name += ", trigger " + string(which.Name())
		}
	}
	if w.GetAccumulationMode() == pipepb.AccumulationMode_ACCUMULATING {
		name += ", accumulating"
	}
	if late := w.GetAllowedLateness(); late > 0 {
		name += fmt.Sprintf(", lateness %v", time.Duration(late)*time.Millisecond)
	}
	return name
}
