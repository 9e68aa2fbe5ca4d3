package manual

import (
	"bytes"
	"fmt"
	"strings"
)

// Page describes a manual page: what the --help text does not say.
type Page struct {
	Name    string // the program
	Section int    // 1 for tcpeekstat, 8 for tcpeek
	Date    string // of the page's last change, as "2026-12-04"
	Version string // of the program ("" leaves it out)
	// Description is the DESCRIPTION section: paragraphs separated by
	// blank lines.
	Description string
	// Sections follow OPTIONS (and the --help text's own extra blocks), in
	// order: SIGNALS, FILES, EXIT STATUS, SEE ALSO...
	Sections []Section
}

// Section is one section of a manual page: a title in capitals, and
// paragraphs separated by blank lines. A paragraph whose lines begin with
// two spaces is shown as it is (examples); one that begins with "- " is a
// list item.
type Section struct {
	Title string
	Text  string
}

// Roff returns the manual page of a program from its --help text, in
// roff(7) with the man(7) macros. The help text's first line is the usage
// (SYNOPSIS), its second the summary (NAME); its "Options:" block becomes
// OPTIONS, an option per entry; other blocks that begin with a line ending
// in ':' become sections of that name, and the lines after the last block
// go to NOTES.
func Roff(help string, p Page) []byte {
	lines := strings.Split(strings.TrimRight(help, "\n"), "\n")
	var b bytes.Buffer
	title := strings.ToUpper(p.Name)
	fmt.Fprintf(&b, ".TH %s %d %q %q %q\n", title, p.Section, p.Date, strings.TrimSpace(p.Name+" "+p.Version), sectionName(p.Section))
	usage := strings.TrimPrefix(lines[0], "Usage: ")
	summary := strings.TrimSuffix(lines[1], ".")
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", p.Name, escape(lowerFirst(summary)))
	b.WriteString(".SH SYNOPSIS\n")
	name, args, _ := strings.Cut(usage, " ")
	fmt.Fprintf(&b, ".B %s\n%s\n", escape(name), escape(args))
	b.WriteString(".SH DESCRIPTION\n")
	paragraphs(&b, p.Description)

	// The blocks of the help text after the summary.
	var notes []string
	i := 2
	for i < len(lines) {
		line := lines[i]
		switch {
		case line == "":
			i++
		case strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " "):
			head := strings.TrimSuffix(line, ":")
			i++
			start := i
			for i < len(lines) && (lines[i] == "" || strings.HasPrefix(lines[i], " ")) {
				i++
			}
			block := lines[start:i]
			if head == "Options" {
				b.WriteString(".SH OPTIONS\n")
				options(&b, block)
			} else {
				fmt.Fprintf(&b, ".SH %s\n", strings.ToUpper(head))
				verbatimBlock(&b, block)
			}
		default:
			notes = append(notes, line)
			i++
		}
	}
	if len(notes) > 0 {
		b.WriteString(".SH NOTES\n")
		paragraphs(&b, strings.Join(notes, "\n"))
	}
	for _, s := range p.Sections {
		fmt.Fprintf(&b, ".SH %s\n", strings.ToUpper(s.Title))
		paragraphs(&b, s.Text)
	}
	return b.Bytes()
}

func sectionName(n int) string {
	if n == 8 {
		return "System Administration"
	}
	return "User Commands"
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// options writes the entries of an "Options:" block: a line that begins
// (after blanks) with '-' starts an entry, its spelling up to two blanks,
// its text after them and on the more indented lines that follow.
func options(b *bytes.Buffer, block []string) {
	for i := 0; i < len(block); {
		line := strings.TrimSpace(block[i])
		if !strings.HasPrefix(line, "-") {
			i++
			continue
		}
		spec, text, _ := strings.Cut(line, "  ")
		var desc []string
		if t := strings.TrimSpace(text); t != "" {
			desc = append(desc, t)
		}
		i++
		for i < len(block) && block[i] != "" && !strings.HasPrefix(strings.TrimSpace(block[i]), "-") {
			desc = append(desc, strings.TrimSpace(block[i]))
			i++
		}
		b.WriteString(".TP\n")
		b.WriteString(optionSpec(spec) + "\n")
		b.WriteString(escape(strings.Join(desc, " ")) + "\n")
	}
}

// optionSpec writes "-i, --interface=DEV" with the names in bold and the
// arguments in italics.
func optionSpec(spec string) string {
	var parts []string
	for _, p := range strings.Split(spec, ", ") {
		name, arg, hasArg := strings.Cut(p, "=")
		if !hasArg {
			if n, a, ok := strings.Cut(p, "["); ok { // --top[=N]
				parts = append(parts, `\fB`+escape(n)+`\fR[=\fI`+escape(strings.TrimSuffix(strings.TrimPrefix(a, "="), "]"))+`\fR]`)
				continue
			}
			parts = append(parts, `\fB`+escape(name)+`\fR`)
			continue
		}
		parts = append(parts, `\fB`+escape(name)+`\fR=\fI`+escape(arg)+`\fR`)
	}
	return strings.Join(parts, ", ")
}

// verbatimBlock writes a block of the help text as it is.
func verbatimBlock(b *bytes.Buffer, block []string) {
	b.WriteString(".nf\n")
	for _, l := range block {
		b.WriteString(escape(strings.TrimPrefix(l, "  ")) + "\n")
	}
	b.WriteString(".fi\n")
}

// paragraphs writes text: paragraphs separated by blank lines, examples
// (lines indented by two blanks) as they are, "- " items as a list.
func paragraphs(b *bytes.Buffer, text string) {
	for i, para := range strings.Split(strings.Trim(text, "\n"), "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		lines := strings.Split(para, "\n")
		switch {
		case strings.HasPrefix(lines[0], "  "):
			b.WriteString(".RS\n")
			verbatimBlock(b, lines)
			b.WriteString(".RE\n")
		case strings.HasPrefix(lines[0], "- "):
			var item []string
			flush := func() {
				if len(item) > 0 {
					b.WriteString(".IP \\(bu 2\n" + escape(strings.Join(item, " ")) + "\n")
					item = nil
				}
			}
			for _, l := range lines {
				if t, ok := strings.CutPrefix(l, "- "); ok {
					flush()
					item = append(item, t)
				} else {
					item = append(item, strings.TrimSpace(l))
				}
			}
			flush()
		default:
			for _, l := range lines {
				b.WriteString(escape(l) + "\n")
			}
		}
	}
}

// escape makes a line of text safe for roff: backslashes and hyphens
// escaped, and a leading period or quote kept from being read as a
// request.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// Generated is a manual page made from a --help text.
type Generated struct {
	File string // tcpeek.8, tcpeekstat.1
	Roff []byte
}

// Pages returns both programs' manual pages.
func Pages() []Generated {
	return []Generated{
		{fmt.Sprintf("%s.%d", TcpeekPage.Name, TcpeekPage.Section), Roff(Tcpeek, TcpeekPage)},
		{fmt.Sprintf("%s.%d", TcpeekstatPage.Name, TcpeekstatPage.Section), Roff(Tcpeekstat, TcpeekstatPage)},
	}
}
