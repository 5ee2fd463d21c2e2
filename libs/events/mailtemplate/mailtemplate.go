// Package mailtemplate is the contract of the mails' templates: what a
// template sees (Data), the platform's defaults, the rules a tenant's own
// templates follow (Compile) and rendering (Set.Render).
//
// A tenant's templates are kept in its log (tenant.mail_template_changed)
// and name Data's fields, so Data is part of the wire contract: a field is
// never renamed or removed, or templates in the log stop rendering.
//
// A template runs no code of its author's: text/template and html/template
// with no function added, executed against Data alone (strings and a
// Time), so a template can neither read a file nor call out. What is left
// to abuse is time and memory, and both are bounded before a template is
// accepted: only the built-ins that compare, test and cut may be called
// (none makes a value longer than its input), range is refused, calls may
// not recurse and a rendering runs at most maxSteps nodes; rendering also
// stops at MaxOutput.
package mailtemplate

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/authstream/authstream/libs/events"
)

// Limits of a tenant's templates.
const (
	// MaxSubjectSize is the longest subject template, in bytes: a subject
	// is one header line.
	MaxSubjectSize = 1 << 10
	// MaxBodySize is the longest text or HTML template, in bytes.
	MaxBodySize = 32 << 10
	// MaxOutput is the longest rendered part, in bytes: a template whose
	// definitions call each other can grow its output exponentially.
	MaxOutput = 256 << 10
)

// The parts of a mail, as errors name them.
const (
	PartSubject = "subject"
	PartText    = "text"
	PartHTML    = "html"
)

// Data is what the templates see.
type Data struct {
	// Tenant is the tenant's slug.
	Tenant string
	// Email is the recipient's address.
	Email string
	// Link is the single-use link.
	Link string
	// ExpiresAt is when the link stops working, and ValidFor how long it
	// is good for from the time it was issued, in words ("30 minutes").
	ExpiresAt Time
	ValidFor  string
}

// Time is a time as the templates see it: printed as time.Time prints,
// or with Format. It is not a time.Time, whose methods a template could
// chain into strings that grow without end.
type Time struct{ t time.Time }

// MaxLayout is the longest layout Time.Format takes, in bytes.
const MaxLayout = 64

// At returns t as the templates see it.
func At(t time.Time) Time { return Time{t: t} }

// Format formats the time as time.Time.Format does, with a layout of at
// most MaxLayout bytes.
func (t Time) Format(layout string) (string, error) {
	if len(layout) > MaxLayout {
		return "", fmt.Errorf("a time layout is at most %d bytes", MaxLayout)
	}
	return t.t.Format(layout), nil
}

// String is the time as time.Time prints it.
func (t Time) String() string { return t.t.String() }

// Mail is a rendered mail: its subject (one line) and its text and HTML
// bodies.
type Mail struct {
	Subject, Text, HTML string
}

// ErrUnknownPurpose is returned by Compile and Default for a purpose that
// has no templates.
var ErrUnknownPurpose = errors.New("unknown mail purpose")

// Error is a tenant's template refused by Compile: Part is PartSubject,
// PartText or PartHTML, Problem says what is wrong in words that hold
// nothing but the template's own text positions.
type Error struct {
	Part    string
	Problem string
}

func (e *Error) Error() string { return e.Part + " template: " + e.Problem }

func refuse(part, format string, args ...any) *Error {
	return &Error{Part: part, Problem: fmt.Sprintf(format, args...)}
}

//go:embed templates/*.tmpl
var templateFS embed.FS

// Purposes returns the link purposes that have templates, sorted.
func Purposes() []string {
	return []string{events.LinkInvitation, events.LinkResetPassword, events.LinkVerifyEmail}
}

// Known reports whether purpose has templates.
func Known(purpose string) bool { return slices.Contains(Purposes(), purpose) }

// DefaultSource returns the platform's templates of purpose as a tenant
// would write them (the HTML without the layout), and false for an
// unknown purpose.
func DefaultSource(purpose string) (events.MailTemplate, bool) {
	if !Known(purpose) {
		return events.MailTemplate{}, false
	}
	read := func(name string) string {
		b, err := templateFS.ReadFile("templates/" + purpose + "." + name + ".tmpl")
		if err != nil {
			panic(err) // embedded: present by construction
		}
		return string(b)
	}
	return events.MailTemplate{Subject: read("subject"), Text: read("txt"), HTML: read("html")}, true
}

// defaults are the platform's sets, parsed once: they never change.
var defaults = sync.OnceValue(func() map[string]*Set {
	out := map[string]*Set{}
	for _, p := range Purposes() {
		src, _ := DefaultSource(p)
		s, err := parseSet(src)
		if err != nil {
			panic(fmt.Sprintf("default templates of %s: %v", p, err))
		}
		out[p] = s
	}
	return out
})

// Default returns the platform's templates of purpose (ErrUnknownPurpose).
func Default(purpose string) (*Set, error) {
	s, ok := defaults()[purpose]
	if !ok {
		return nil, ErrUnknownPurpose
	}
	return s, nil
}

// Set is the templates of one purpose, ready to render; safe for
// concurrent use.
type Set struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Compile checks a tenant's override of the templates of purpose and
// returns the set it makes, the default's part standing in for each part
// the override leaves empty. It returns ErrUnknownPurpose, or an *Error
// for a part that is too long, does not parse, breaks the layout (HTML:
// only the definitions of "title" and "body", "body" required), calls a
// function but the allowed ones, ranges, recurses or runs more than
// maxSteps nodes, names a field Data does not have, renders more than
// MaxOutput, renders a subject that is empty or more than one line, or
// leaves out the link (text, HTML): each part is rendered once against
// sample data of tenant to find out.
func Compile(tenant, purpose string, o events.MailTemplate) (*Set, error) {
	def, ok := DefaultSource(purpose)
	if !ok {
		return nil, ErrUnknownPurpose
	}
	for _, p := range []struct {
		part, src string
		max       int
	}{{PartSubject, o.Subject, MaxSubjectSize}, {PartText, o.Text, MaxBodySize}, {PartHTML, o.HTML, MaxBodySize}} {
		if len(p.src) > p.max {
			return nil, refuse(p.part, "longer than %d bytes", p.max)
		}
		if !utf8.ValidString(p.src) {
			return nil, refuse(p.part, "not valid UTF-8")
		}
	}
	src := o
	if src.Subject == "" {
		src.Subject = def.Subject
	}
	if src.Text == "" {
		src.Text = def.Text
	}
	if src.HTML == "" {
		src.HTML = def.HTML
	}
	s, err := parseSet(src)
	if err != nil {
		return nil, err
	}
	const link = "https://authstream.invalid/t/sample/link?token=sample-token-0123456789"
	m, err := s.Render(Data{Tenant: tenant, Email: "someone@example.com", Link: link,
		ExpiresAt: At(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), ValidFor: "30 minutes"})
	if err != nil {
		return nil, err
	}
	if !strings.Contains(m.Text, link) {
		return nil, refuse(PartText, "the mail does not carry the link ({{.Link}})")
	}
	if !strings.Contains(m.HTML, link) {
		return nil, refuse(PartHTML, "the mail does not carry the link ({{.Link}})")
	}
	return s, nil
}

// parseSet parses the three parts of src, none empty.
func parseSet(src events.MailTemplate) (*Set, error) {
	subject, err := parseText(PartSubject, src.Subject)
	if err != nil {
		return nil, err
	}
	text, err := parseText(PartText, src.Text)
	if err != nil {
		return nil, err
	}
	html, err := parseHTML(src.HTML)
	if err != nil {
		return nil, err
	}
	return &Set{subject: subject, text: text, html: html}, nil
}

func parseText(part, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(part).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, refuse(part, "%s", parseProblem(err))
	}
	prog := program{}
	for _, d := range t.Templates() {
		if prog[d.Name()], err = checkNodes(part, d.Tree); err != nil {
			return nil, err
		}
	}
	if err := prog.check(part, part); err != nil {
		return nil, err
	}
	return t, nil
}

// parseHTML parses an HTML part the way the defaults are written: the
// definitions of "title" (optional) and "body" (required), which the
// platform's layout places; nothing else, so the layout stays whole.
func parseHTML(src string) (*htmltemplate.Template, error) {
	// The same syntax, parsed once alone to see what it defines.
	alone, err := texttemplate.New(PartHTML).Parse(src)
	if err != nil {
		return nil, refuse(PartHTML, "%s", parseProblem(err))
	}
	prog, err := layoutProgram()
	if err != nil {
		return nil, err
	}
	for _, d := range alone.Templates() {
		switch d.Name() {
		case PartHTML:
			for _, n := range d.Tree.Root.Nodes {
				if tn, ok := n.(*parse.TextNode); !ok || len(bytes.TrimSpace(tn.Text)) > 0 {
					return nil, refuse(PartHTML, `holds something outside {{define "title"}} and {{define "body"}}`)
				}
			}
		case "title", "body":
		default:
			return nil, refuse(PartHTML, `defines %q: only "title" and "body" may be defined`, d.Name())
		}
		if prog[d.Name()], err = checkNodes(PartHTML, d.Tree); err != nil {
			return nil, err
		}
	}
	if alone.Lookup("body") == nil {
		return nil, refuse(PartHTML, `defines no "body" ({{define "body"}}...{{end}})`)
	}
	if err := prog.check(PartHTML, "layout"); err != nil {
		return nil, err
	}
	// The layout is parsed for each set: a template that has run cannot
	// be cloned, and the defaults' run.
	layout, err := htmltemplate.ParseFS(templateFS, "templates/layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	t, err := layout.New(PartHTML).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, refuse(PartHTML, "%s", parseProblem(err))
	}
	return t, nil
}

// funcs are the functions a template may call: the packages' built-ins
// that compare, test and cut. The others (print, printf, println, html,
// js, urlquery, call) are refused: a mail has no use for them, and with
// variables reassigned ({{$x = print $x $x}}) they build strings that
// double at each step.
var funcs = map[string]bool{
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"len": true, "index": true, "slice": true,
}

// maxSteps is the most nodes one rendering of a part may run, the
// definitions it calls counted each time they run.
const maxSteps = 20000

// definition is what checkNodes learns of one template definition: how
// many nodes one run of it runs (its calls aside), and the definitions it
// calls, once per call.
type definition struct {
	steps int
	calls []string
}

// program is a part's definitions by name.
type program map[string]definition

// checkNodes refuses what a mail template has no use for and could spend
// time or memory with: range (over nothing Data holds, only a number the
// template makes up) and functions but funcs. It returns what the
// definition runs.
func checkNodes(part string, tree *parse.Tree) (definition, error) {
	var d definition
	if tree == nil || tree.Root == nil {
		return d, nil
	}
	var walk func(parse.Node) error
	walk = func(n parse.Node) error {
		if n == nil {
			return nil
		}
		d.steps++
		switch n := n.(type) {
		case *parse.RangeNode:
			return refuse(part, "uses range, which a mail template has no use for")
		case *parse.IdentifierNode:
			if !funcs[n.Ident] {
				return refuse(part, "calls %s: a mail template may call only %s", n.Ident, funcNames())
			}
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.ActionNode:
			return walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Cmds {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				if err := walk(a); err != nil {
					return err
				}
			}
		case *parse.ChainNode:
			return walk(n.Node)
		case *parse.TemplateNode:
			d.calls = append(d.calls, n.Name)
			return walk(n.Pipe)
		case *parse.IfNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.WithNode:
			return walkBranch(walk, &n.BranchNode)
		}
		return nil
	}
	if err := walk(tree.Root); err != nil {
		return definition{}, err
	}
	return d, nil
}

func walkBranch(walk func(parse.Node) error, b *parse.BranchNode) error {
	if err := walk(b.Pipe); err != nil {
		return err
	}
	if err := walk(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return walk(b.ElseList)
	}
	return nil
}

func funcNames() string {
	names := make([]string, 0, len(funcs))
	for n := range funcs {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// layoutProgram is what the platform's HTML layout runs: it places
// "title" and "body".
func layoutProgram() (program, error) {
	src, err := templateFS.ReadFile("templates/layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	t, err := texttemplate.New("layout.html.tmpl").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	d, err := checkNodes(PartHTML, t.Lookup("layout").Tree)
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	return program{"layout": d}, nil
}

// check refuses a program whose definitions call themselves, through
// others or not (the package would stop them only 100,000 calls deep), or
// whose rendering from root runs more than maxSteps nodes: definitions
// that each call the next twice run exponentially many, output or not.
func (p program) check(part, root string) error {
	total := map[string]int{}
	const visiting = -1
	var count func(string) (int, error)
	count = func(name string) (int, error) {
		switch n := total[name]; {
		case n == visiting:
			return 0, refuse(part, "template %q calls itself", name)
		case n > 0:
			return n, nil
		}
		total[name] = visiting
		sum := p[name].steps + 1
		for _, c := range p[name].calls {
			n, err := count(c)
			if err != nil {
				return 0, err
			}
			if sum += n; sum > maxSteps {
				return 0, refuse(part, "runs more than %d steps", maxSteps)
			}
		}
		total[name] = sum
		return sum, nil
	}
	_, err := count(root)
	return err
}

// parseProblem is a parse error without the "template: " prefix the
// package puts first.
func parseProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "template: ")
}

// Render renders the mail of d. It returns an *Error when a part fails to
// render (a field Data does not have, an output over MaxOutput) or the
// subject is empty or more than one line; the error holds no value of d.
func (s *Set) Render(d Data) (Mail, error) {
	var subj, txt, html limitedBuffer
	if err := s.subject.Execute(&subj, d); err != nil {
		return Mail{}, execProblem(PartSubject, err)
	}
	if err := s.text.Execute(&txt, d); err != nil {
		return Mail{}, execProblem(PartText, err)
	}
	if err := s.html.ExecuteTemplate(&html, "layout", d); err != nil {
		return Mail{}, execProblem(PartHTML, err)
	}
	subject := strings.TrimSpace(subj.String())
	if subject == "" {
		return Mail{}, refuse(PartSubject, "renders empty")
	}
	if strings.ContainsAny(subject, "\r\n") {
		return Mail{}, refuse(PartSubject, "renders more than one line")
	}
	return Mail{Subject: subject, Text: txt.String(), HTML: html.String()}, nil
}

// execProblem turns an execution error into an *Error. The package's
// execution errors name the template, its position and the field or
// function at fault; the ones that could quote a value (a function's
// own error) are the index and slice builtins', whose messages hold
// indexes only.
func execProblem(part string, err error) error {
	if errors.Is(err, errTooLong) {
		return refuse(part, "renders more than %d bytes", MaxOutput)
	}
	var ee texttemplate.ExecError
	if errors.As(err, &ee) {
		return refuse(part, "%s", parseProblem(ee.Err))
	}
	return refuse(part, "%s", parseProblem(err))
}

var errTooLong = errors.New("rendered part too long")

// limitedBuffer is a buffer that refuses to grow past MaxOutput.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxOutput {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}
