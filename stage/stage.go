package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"

	"github.com/beamctl/beamctl/internal/beam"
	"github.com/beamctl/beamctl/internal/digest"
)

// Chunk sizes: gRPC servers accept 4 MiB messages by default, and the data
// message carries a few bytes of framing besides the chunk. gRPC-go encodes
// messages of up to 1 MiB into pooled buffers and larger ones into fresh
// allocations, so the default chunk leaves room for the framing under 1 MiB:
// staging then makes no garbage, which keeps it fast and its memory flat.
const (
	DefaultChunkSize = 1<<20 - 64
	MinChunkSize     = 64 << 10
	MaxChunkSize     = 4<<20 - 4<<10
)

// hashBacklog is how many sent chunks may wait for the hasher before sending
// waits for it.
const hashBacklog = 4

// Options tune Artifacts. The zero value is ready to use.
type Options struct {
	// PreparationID is sent as the gRPC metadata worker_id, as the Beam SDKs
	// do; the staging token itself travels in the first message.
	PreparationID string
	// ChunkSize is the number of file bytes per message; 0 means
	// DefaultChunkSize.
	ChunkSize int
	// Logger receives debug records per artifact; nil discards them.
	Logger *slog.Logger
	// Progress, if set, is called after every chunk sent.
	Progress func(Progress)
	// Digests knows the digests of files this run has hashed already; a
	// file it knows in its current state is sent without hashing it again.
	// Default: a new cache.
	Digests *digest.Cache
}

// Progress reports how much of a file has been sent.
type Progress struct {
	Path string
	Sent int64
	Size int64
}

func (o *Options) validate() error {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < MinChunkSize || o.ChunkSize > MaxChunkSize {
		return fmt.Errorf("chunk size %d is out of range; use %d to %d bytes", o.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Digests == nil {
		o.Digests = digest.NewCache()
	}
	return nil
}

// Artifacts serves one staging session: it opens the reverse retrieval
// stream, identifies itself with the staging token and answers the job
// server's requests until the server ends the session. Files come from
// files, which decides what may be sent.
//
// A file whose content no longer matches its declared sha256 is sent without
// its final message: the session is aborted, so the server never holds a
// complete artifact with the wrong content.
func Artifacts(ctx context.Context, client jobpb.ArtifactStagingServiceClient, token string, files FileResolver, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	// Cancelling is how a session is aborted without sending is_last.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.PreparationID != "" {
		ctx = beam.WithWorkerID(ctx, o.PreparationID)
	}
	stream, err := client.ReverseArtifactRetrievalService(ctx)
	if err != nil {
		return fmt.Errorf("opening artifact staging session: %w", err)
	}
	s := &session{stream: stream, files: files, o: o}
	if err := s.send(&jobpb.ArtifactResponseWrapper{StagingToken: token}); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("artifact staging session ended by the job server: %w", err)
		}
		switch r := req.GetRequest().(type) {
		case *jobpb.ArtifactRequestWrapper_ResolveArtifact:
			// Local files are already as resolved as they can be.
			err = s.send(&jobpb.ArtifactResponseWrapper{
				Response: &jobpb.ArtifactResponseWrapper_ResolveArtifactResponse{
					ResolveArtifactResponse: &jobpb.ResolveArtifactsResponse{Replacements: r.ResolveArtifact.GetArtifacts()},
				},
			})
		case *jobpb.ArtifactRequestWrapper_GetArtifact:
			err = s.serve(ctx, r.GetArtifact)
		default:
			err = fmt.Errorf("job server sent an unknown artifact request %T; is it a newer Beam version?", r)
		}
		if err != nil {
			return err
		}
	}
}

type session struct {
	stream jobpb.ArtifactStagingService_ReverseArtifactRetrievalServiceClient
	files  FileResolver
	o      Options
}

// send turns io.EOF, which only says the server hung up, into the status the
// server ended the stream with.
func (s *session) send(m *jobpb.ArtifactResponseWrapper) error {
	err := s.stream.Send(m)
	if errors.Is(err, io.EOF) {
		if _, rerr := s.stream.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
			err = rerr
		}
		return fmt.Errorf("artifact staging session ended by the job server: %w", err)
	}
	if err != nil {
		return fmt.Errorf("sending to the artifact staging service: %w", err)
	}
	return nil
}

func (s *session) serve(ctx context.Context, req *jobpb.GetArtifactRequest) error {
	file, err := s.files.ResolveFile(req.GetArtifact())
	if err != nil {
		return err
	}
	f, err := os.Open(file.Path)
	if err != nil {
		return fmt.Errorf("opening artifact: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening artifact: %w", err)
	}
	start := time.Now()
	var sum string
	if known, ok := s.o.Digests.Known(file.Path, f); ok && file.SHA256 != "" {
		// The content was hashed in this run and the file has not been
		// touched since; hashing it again would only compete with the
		// transfer for CPU. It must stay untouched until the last chunk.
		if err := s.sendChunks(ctx, f, file.Path, st.Size(), s.buffers(1), nil); err != nil {
			return err
		}
		if same, err := s.o.Digests.StillIs(ctx, file.Path, f, known); err != nil {
			return fmt.Errorf("rereading artifact %s: %w", file.Path, err)
		} else if !same {
			return fmt.Errorf("artifact %s changed while it was being staged; capture the pipeline again", file.Path)
		}
		sum = known.SHA256
	} else {
		// Hashing runs beside sending: on small machines sha256 costs as
		// much CPU as the transfer. Buffers circulate from the sender to
		// the hasher and back, so a file of any size costs hashBacklog+1
		// chunks of memory and no garbage.
		free := s.buffers(hashBacklog + 1)
		chunks := make(chan []byte, hashBacklog)
		digests := make(chan string, 1)
		go func() {
			h := digest.New()
			for c := range chunks {
				h.Write(c)
				free <- c[:cap(c)]
			}
			digests <- h.Hex()
		}()
		sendErr := s.sendChunks(ctx, f, file.Path, st.Size(), free, chunks)
		close(chunks)
		sum = <-digests
		if sendErr != nil {
			return sendErr
		}
	}
	if file.SHA256 != "" && sum != file.SHA256 {
		return &MismatchError{Path: file.Path, Want: file.SHA256, Got: sum}
	}
	err = s.send(&jobpb.ArtifactResponseWrapper{
		IsLast:   true,
		Response: &jobpb.ArtifactResponseWrapper_GetArtifactResponse{GetArtifactResponse: &jobpb.GetArtifactResponse{}},
	})
	if err != nil {
		return fmt.Errorf("staging %s: %w", file.Path, err)
	}
	s.o.Logger.Debug("staged artifact", "path", file.Path, "bytes", st.Size(), "sha256", sum, "duration", time.Since(start))
	return nil
}

// buffers returns a pool of n chunk buffers.
func (s *session) buffers(n int) chan []byte {
	free := make(chan []byte, n)
	for range n {
		free <- make([]byte, s.o.ChunkSize)
	}
	return free
}

// sendChunks sends the file's content in chunks read into buffers taken from
// free, and hands each chunk to hash once it is sent; with no hash, buffers
// go straight back to free.
func (s *session) sendChunks(ctx context.Context, f io.Reader, path string, size int64, free chan []byte, hash chan<- []byte) error {
	var sent int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := <-free
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			// gRPC-go has encoded the message by the time Send returns
			// (the Beam SDK reuses its buffer on the same grounds), so the
			// buffer is the hasher's alone from here on.
			err := s.send(&jobpb.ArtifactResponseWrapper{
				Response: &jobpb.ArtifactResponseWrapper_GetArtifactResponse{
					GetArtifactResponse: &jobpb.GetArtifactResponse{Data: buf[:n]},
				},
			})
			if err != nil {
				return fmt.Errorf("staging %s: %w", path, err)
			}
			if hash != nil {
				hash <- buf[:n]
			} else {
				free <- buf
			}
			sent += int64(n)
			if s.o.Progress != nil {
				s.o.Progress(Progress{Path: path, Sent: sent, Size: size})
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("reading artifact %s: %w", path, rerr)
		}
	}
}
