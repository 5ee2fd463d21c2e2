package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// maxPasswordBytes bounds what is read as a password; the services refuse
// more than 72 bytes anyway.
const maxPasswordBytes = 1024

// fdReader is standard input when it is a file (a terminal, perhaps).
type fdReader interface {
	io.Reader
	Fd() uintptr
}

// password reads a password: the first line of standard input when
// fromStdin is set, else typed at the terminal without echo (twice when
// confirm is set, for a new password). It is a usage error to need a
// terminal without one.
func (in *inv) password(prompt string, fromStdin, confirm bool, stdinFlag string) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(in.env.In, maxPasswordBytes)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("standard input holds no password")
		}
		return pw, nil
	}
	f, ok := in.env.In.(fdReader)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageErrorf("no terminal to type the password at: pass %s and write it to standard input", stdinFlag)
	}
	pw, err := readHidden(in, f, prompt)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("no password typed")
	}
	if confirm {
		again, err := readHidden(in, f, "Repeat it: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords do not match")
		}
	}
	return pw, nil
}

func readHidden(in *inv, f fdReader, prompt string) (string, error) {
	fmt.Fprint(in.env.Err, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(in.env.Err)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return string(b), nil
}
