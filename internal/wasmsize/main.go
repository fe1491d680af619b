// Command wasmsize tells where the bytes of a Go WebAssembly module go: it
// reads the module's sections, the code section's function bodies and the
// "name" custom section, and sums the body sizes by Go package.
//
//	go run ./internal/wasmsize [-n 40] [-by pkg|mod|func] [-pkg ./wasm] [-base old.wasm] file.wasm
//
// Build the module without -ldflags="-s -w" (which drops the name section).
// The name section spells "a/b.c" as "a_b.c"; with -pkg, the packages that
// `go list -deps` finds for the js/wasm build of that package get their real
// import paths and modules back. -by mod groups by module; -by func lists the
// largest functions. -base prints the difference from another module
// (what a change added or removed), largest first.
// The data section (type descriptors, strings, pclntab) is not split by
// package: its total is printed with the other sections.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

func main() {
	n := flag.Int("n", 40, "rows to print")
	by := flag.String("by", "pkg", "group by pkg, mod or func")
	pkg := flag.String("pkg", "", "the main package the module was built from (go list resolves import paths)")
	base := flag.String("base", "", "a second module: print the difference, file.wasm minus this one")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wasmsize [-n rows] [-by pkg|mod|func] [-pkg main package] [-base other.wasm] file.wasm")
		os.Exit(2)
	}
	if err := run(os.Stdout, flag.Arg(0), *base, *pkg, *by, *n); err != nil {
		fmt.Fprintln(os.Stderr, "wasmsize:", err)
		os.Exit(1)
	}
}

// table is a module's function body bytes and counts by key.
type table struct {
	m      *module
	size   int
	bytes  map[string]int
	counts map[string]int
}

func load(path, by string, paths map[string]pkgInfo) (*table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.names) == 0 {
		return nil, fmt.Errorf("%s: no function names: build without -ldflags=\"-s -w\"", path)
	}
	t := &table{m: m, size: len(data), bytes: map[string]int{}, counts: map[string]int{}}
	for i, size := range m.bodies {
		name := m.names[m.imported+i]
		key := name
		switch by {
		case "pkg":
			key = resolve(name, paths)
		case "mod":
			key = modOf(resolve(name, paths), paths)
		case "func":
		default:
			return nil, fmt.Errorf("-by %q: want pkg, mod or func", by)
		}
		t.bytes[key] += size
		t.counts[key]++
	}
	return t, nil
}

func run(w io.Writer, path, basePath, pkg, by string, rows int) error {
	var paths map[string]pkgInfo
	if pkg != "" {
		var err error
		if paths, err = listPackages(pkg); err != nil {
			return err
		}
	}
	t, err := load(path, by, paths)
	if err != nil {
		return err
	}
	var base *table
	if basePath != "" {
		if base, err = load(basePath, by, paths); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "section\tbytes\t\n")
	secs := map[string]int{}
	for _, s := range t.m.sections {
		secs[s.name] += s.size
		fmt.Fprintf(tw, "%s\t%d\t\n", s.name, s.size)
	}
	fmt.Fprintf(tw, "total\t%d\t\n", t.size)
	if base != nil {
		fmt.Fprintf(tw, "minus base: code\t%d\t\n", secs["code"]-sectionSize(base.m, "code"))
		fmt.Fprintf(tw, "minus base: data\t%d\t\n", secs["data"]-sectionSize(base.m, "data"))
		fmt.Fprintf(tw, "minus base: total\t%d\t\n", t.size-base.size)
	}
	fmt.Fprintln(tw)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	sums, counts := t.bytes, t.counts
	if base != nil {
		sums, counts = map[string]int{}, map[string]int{}
		for k, v := range t.bytes {
			sums[k], counts[k] = v, t.counts[k]
		}
		for k, v := range base.bytes {
			sums[k] -= v
			counts[k] -= base.counts[k]
			if sums[k] == 0 && counts[k] == 0 {
				delete(sums, k)
			}
		}
	}
	total := 0
	keys := make([]string, 0, len(sums))
	for k, v := range sums {
		keys = append(keys, k)
		total += v
	}
	abs := func(v int) int { return max(v, -v) }
	sort.Slice(keys, func(i, j int) bool {
		if a, b := abs(sums[keys[i]]), abs(sums[keys[j]]); a != b {
			return a > b
		}
		return keys[i] < keys[j]
	})
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "code bytes\t%%\tfuncs\t%s\n", by)
	for i, k := range keys {
		if i == rows {
			rest, restN := 0, 0
			for _, k := range keys[i:] {
				rest += sums[k]
				restN += counts[k]
			}
			fmt.Fprintf(tw, "%d\t%.1f\t%d\t(%d more)\n", rest, pct(rest, total), restN, len(keys)-i)
			break
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%d\t%s\n", sums[k], pct(sums[k], total), counts[k], k)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	fmt.Fprintf(tw, "%d\t100.0\t%d\t(all function bodies)\n", total, n)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func sectionSize(m *module, name string) int {
	n := 0
	for _, s := range m.sections {
		if s.name == name {
			n += s.size
		}
	}
	return n
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// pkgOf is the Go package of a function name in the name section. The
// linker writes every character other than letters, digits, '_' and '.' as
// '_' there, so "github.com/pion/ice/v4.(*Agent).Close" reads
// "github.com_pion_ice_v4.__Agent_.Close": the package is the text up to the
// first dot, or for a path that starts with a domain, up to the first dot
// after the domain. The linker's prefixes (type:.eq., vendor/) are handled;
// names without a package (memchr, wasm_export_run) count as "runtime".
func pkgOf(sym string) string {
	sym = stripLinkerPrefix(sym)
	prefix := ""
	if strings.HasPrefix(sym, "vendor_") {
		prefix, sym = "vendor_", sym[len("vendor_"):]
	}
	dot := strings.IndexByte(sym, '.')
	if dot < 0 {
		return "runtime"
	}
	if us := strings.IndexByte(sym, '_'); us > dot && isTLD(sym[dot+1:us]) {
		// A domain: the package ends at the first dot after it.
		if d := strings.IndexByte(sym[us:], '.'); d >= 0 {
			return prefix + sym[:us+d]
		}
		return prefix + sym
	}
	return prefix + sym[:dot]
}

// stripLinkerPrefix takes off the prefix of the linker's generated equality
// and hash functions (type:.eq.[2]pkg.T reads type_.eq._2_pkg.T).
func stripLinkerPrefix(sym string) string {
	for _, p := range []string{"type_.eq.", "type_.hash."} {
		if strings.HasPrefix(sym, p) {
			return strings.TrimLeft(sym[len(p):], "_0123456789")
		}
	}
	return sym
}

// isTLD reports whether s looks like the last label of a domain (com, org, in).
func isTLD(s string) bool {
	if len(s) < 2 || len(s) > 6 {
		return false
	}
	for _, c := range s {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// resolve is pkgOf with the packages go list found: the longest known
// package that the name starts with, followed by a dot.
func resolve(sym string, paths map[string]pkgInfo) string {
	guess := pkgOf(sym)
	sym = stripLinkerPrefix(sym)
	if paths == nil {
		return guess
	}
	best := ""
	for i := 0; i < len(sym); i++ {
		if sym[i] == '.' {
			if info, ok := paths[sym[:i]]; ok {
				best = info.path
			}
		}
	}
	if best == "" {
		if info, ok := paths[guess]; ok {
			return info.path
		}
		return guess
	}
	return best
}

// modOf groups a package by module: the module go list named for it, "std"
// for the standard library, or the first three elements of a domain path.
func modOf(pkg string, paths map[string]pkgInfo) string {
	if info, ok := paths[mangle(pkg)]; ok {
		return info.module
	}
	if strings.HasPrefix(pkg, "vendor_") {
		return "std"
	}
	dot := strings.IndexByte(pkg, '.')
	us := strings.IndexByte(pkg, '_')
	if dot < 0 || (us >= 0 && us < dot) {
		return "std"
	}
	parts := strings.SplitN(pkg, "_", 4)
	if len(parts) > 3 {
		parts = parts[:3]
	}
	return strings.Join(parts, "/")
}
