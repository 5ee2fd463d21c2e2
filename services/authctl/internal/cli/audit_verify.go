package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/authstream/authstream/libs/events"
)

// maxLine bounds one line of an export: an envelope is at most
// events.MaxEnvelopeSize, plus its sequence.
const maxLine = events.MaxEnvelopeSize + 64

// Verdict is the outcome of verifying an export: every hash and link of
// every aggregate it holds, or the first broken one.
type Verdict struct {
	OK         bool   `json:"ok"`
	Events     int    `json:"events"`
	Aggregates int    `json:"aggregates"`
	Broken     *Break `json:"broken,omitempty"`
	// Tree, with a checkpoint, says whether the events are exactly the
	// log it signs.
	Tree *TreeVerdict `json:"tree,omitempty"`
}

// Break is where a history stops verifying: the line (from 1) of the
// first event that does not fit, which aggregate it claims to belong to,
// and what is wrong.
type Break struct {
	Line        int    `json:"line"`
	Tenant      string `json:"tenant,omitempty"`
	Aggregate   string `json:"aggregate,omitempty"`
	AggregateID string `json:"aggregate_id,omitempty"`
	Version     uint64 `json:"version,omitempty"`
	Problem     string `json:"problem"`
}

// String is the one-line report: "broken at line 17: user 0190…/v4: hash
// does not match (event altered)".
func (b *Break) String() string {
	if b.Aggregate == "" {
		return fmt.Sprintf("broken at line %d: %s", b.Line, b.Problem)
	}
	return fmt.Sprintf("broken at line %d: %s %s/v%d: %s", b.Line, b.Aggregate, b.AggregateID, b.Version, b.Problem)
}

// verifyLines reads JSON Lines of events (an export, with or without each
// line's "sequence") and verifies each aggregate's chain: lines are
// grouped by tenant, aggregate and id in the order they come, and every
// group must be a complete history from version 1 whose hashes and links
// recompute (events.VerifyChain). Blank lines are skipped. It returns the
// first break by line number, or an error when r cannot be read.
//
// The last events of an aggregate cut off the end of a file leave a
// shorter history that still verifies, and so does a file without some
// whole aggregates: a checkpoint rules both out (verifyTree, on the lines
// that leaves collects in order when it is not nil).
func verifyLines(r io.Reader, leaves *[]leafLine) (Verdict, error) {
	type line struct {
		n   int
		env events.Envelope
	}
	type group struct {
		lines []line
	}
	groups := map[string]*group{}
	var order []string
	v := Verdict{}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		raw, err := readLine(br)
		if errors.Is(err, io.EOF) && len(raw) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return brokenAt(v, &Break{Line: n, Problem: "line longer than an event may be"}), nil
			}
			return Verdict{}, err
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		body, seq, err := withoutMember(raw, "sequence")
		if err != nil {
			return brokenAt(v, &Break{Line: n, Problem: "not a JSON object (" + err.Error() + ")"}), nil
		}
		env, err := events.ParseEnvelope(body)
		if err != nil {
			return brokenAt(v, &Break{Line: n, Problem: "not a valid event (" + err.Error() + ")"}), nil
		}
		key := env.Tenant + "/" + env.Aggregate + "/" + env.AggregateID
		g := groups[key]
		if g == nil {
			g = &group{}
			groups[key] = g
			order = append(order, key)
		}
		g.lines = append(g.lines, line{n: n, env: env})
		v.Events++
		if leaves != nil {
			l := leafLine{line: n, hash: env.Hash}
			if seq != nil {
				s, err := strconv.ParseUint(string(seq), 10, 64)
				if err != nil {
					return brokenAt(v, &Break{Line: n, Problem: "sequence is not a whole number"}), nil
				}
				l.seq, l.hasSeq = s, true
			}
			*leaves = append(*leaves, l)
		}
	}
	v.Aggregates = len(order)

	var first *Break
	for _, key := range order {
		g := groups[key]
		envs := make([]events.Envelope, len(g.lines))
		for i, l := range g.lines {
			envs[i] = l.env
		}
		err := events.VerifyChain(envs)
		if err == nil {
			continue
		}
		var ce *events.ChainError
		if !errors.As(err, &ce) || ce.Index < 0 || ce.Index >= len(envs) {
			return Verdict{}, err
		}
		e := envs[ce.Index]
		b := &Break{Line: g.lines[ce.Index].n, Tenant: e.Tenant, Aggregate: e.Aggregate, AggregateID: e.AggregateID,
			Version: e.Version, Problem: diagnose(envs, ce.Index)}
		if first == nil || b.Line < first.Line {
			first = b
		}
	}
	if first != nil {
		return brokenAt(v, first), nil
	}
	v.OK = true
	return v, nil
}

func brokenAt(v Verdict, b *Break) Verdict {
	v.OK, v.Broken = false, b
	return v
}

// diagnose says in words why envs[i], the first event of one aggregate's
// history that VerifyChain refused, does not fit there.
func diagnose(envs []events.Envelope, i int) string {
	e, want := envs[i], uint64(i)+1 //nolint:gosec // G115: i indexes envs
	hasVersion := func(from int, v uint64) bool {
		return slices.ContainsFunc(envs[from:], func(x events.Envelope) bool { return x.Version == v })
	}
	switch {
	case e.Version > want && hasVersion(i+1, want):
		return fmt.Sprintf("comes before v%d (events reordered)", want)
	case e.Version > want && want == 1:
		return "v1 is missing (event removed, or the history starts later)"
	case e.Version > want:
		return fmt.Sprintf("v%d is missing (event removed)", want)
	case e.Version < want && envs[e.Version-1].ID == e.ID:
		// Every event before i has its version in place (i is the first
		// break), so envs[e.Version-1] is the earlier one of that version.
		return fmt.Sprintf("v%d appears twice (event duplicated)", e.Version)
	case e.Version < want && e.Version > 0:
		return fmt.Sprintf("a second v%d (event inserted)", e.Version)
	}
	wantPrev := ""
	if i > 0 {
		wantPrev = envs[i-1].Hash
	}
	if e.Prev != wantPrev {
		if i > 0 {
			return fmt.Sprintf("prev does not match the hash of v%d (an event was replaced, or altered and its hash recomputed)", want-1)
		}
		return "prev is set on the first event"
	}
	return "hash does not match (event altered)"
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline, at most maxLine
// bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > maxLine {
			// Skip the rest of the line; the caller stops anyway.
			return nil, errLineTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(out, []byte("\n")), err
	}
}

// withoutMember returns the JSON object raw without its top-level member
// name, every other member kept in order and byte for byte (duplicates
// included, so that events.ParseEnvelope still refuses them), and the
// value of the member (nil when absent).
func withoutMember(raw []byte, name string) ([]byte, json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("not an object")
	}
	out := []byte{'{'}
	var removed json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, errors.New("not an object")
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, nil, err
		}
		if key == name {
			removed = val
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(key)
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, val...)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("more than one value on the line")
	}
	return append(out, '}'), removed, nil
}
