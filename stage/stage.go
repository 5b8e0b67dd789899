package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc/metadata"
)

// Chunk sizes: gRPC servers accept 4 MiB messages by default, and the data
// message carries a few bytes of framing besides the chunk.
const (
	DefaultChunkSize = 2 << 20
	MinChunkSize     = 64 << 10
	MaxChunkSize     = 4<<20 - 4<<10
)

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
		ctx = metadata.AppendToOutgoingContext(ctx, "worker_id", o.PreparationID)
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
	// Hashing runs beside sending: on small machines sha256 costs as much
	// CPU as the transfer.
	chunks := make(chan []byte, 4)
	digest := make(chan string, 1)
	go func() {
		h := sha256.New()
		for c := range chunks {
			h.Write(c)
		}
		digest <- hex.EncodeToString(h.Sum(nil))
	}()
	sendErr := s.sendChunks(ctx, f, file.Path, st.Size(), chunks)
	close(chunks)
	sum := <-digest
	if sendErr != nil {
		return sendErr
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

// sendChunks sends the file's content in chunks, each also handed to hash.
func (s *session) sendChunks(ctx context.Context, f io.Reader, path string, size int64, hash chan<- []byte) error {
	var sent int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A fresh buffer per message: gRPC and the hasher may still hold
		// the previous one.
		buf := make([]byte, s.o.ChunkSize)
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			hash <- buf[:n]
			err := s.send(&jobpb.ArtifactResponseWrapper{
				Response: &jobpb.ArtifactResponseWrapper_GetArtifactResponse{
					GetArtifactResponse: &jobpb.GetArtifactResponse{Data: buf[:n]},
				},
			})
			if err != nil {
				return fmt.Errorf("staging %s: %w", path, err)
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
