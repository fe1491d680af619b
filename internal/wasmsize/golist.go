package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// pkgInfo is a package's real import path and its module.
type pkgInfo struct {
	path   string
	module string
}

// listPackages runs go list -deps for pattern as the js/wasm build sees it
// and maps each package's name-section spelling (see pkgOf) to its import
// path and module.
func listPackages(pattern string) (map[string]pkgInfo, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{else}}std{{end}}", pattern)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w: %s", pattern, err, strings.TrimSpace(stderr.String()))
	}
	m := map[string]pkgInfo{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, mod, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		m[mangle(path)] = pkgInfo{path: path, module: mod}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("go list output: %w", err)
	}
	return m, nil
}

// mangle spells an import path the way the linker writes it in the name
// section: every character but letters, digits, '_' and '.' becomes '_'.
func mangle(path string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
			return r
		}
		return '_'
	}, path)
}
