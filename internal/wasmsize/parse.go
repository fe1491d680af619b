package main

import (
	"bytes"
	"errors"
	"fmt"
)

// module is what wasmsize needs of a WebAssembly binary.
type module struct {
	sections []section
	imported int            // imported functions: they come first in the function index space
	bodies   []int          // code section: the size of each defined function's body
	names    map[int]string // name section: function index to name
}

type section struct {
	name string
	size int
}

var sectionNames = map[byte]string{
	1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
	7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount",
}

// parse reads the sections of a WebAssembly binary (version 1).
func parse(b []byte) (*module, error) {
	if len(b) < 8 || !bytes.Equal(b[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly module")
	}
	m := &module{names: map[int]string{}}
	r := &reader{b: b, off: 8}
	for r.off < len(b) {
		id := r.byte()
		size := r.uint()
		if r.err != nil || r.off+size > len(b) {
			return nil, fmt.Errorf("section at %d: truncated", r.off)
		}
		body := &reader{b: b[r.off : r.off+size]}
		r.off += size
		name := sectionNames[id]
		var err error
		switch id {
		case 0:
			name = "custom:" + body.name()
			if name == "custom:name" {
				err = m.readNames(body)
			}
		case 2:
			err = m.readImports(body)
		case 10:
			err = m.readCode(body)
		}
		if err != nil {
			return nil, fmt.Errorf("%s section: %w", name, err)
		}
		if name == "" {
			name = fmt.Sprintf("id %d", id)
		}
		m.sections = append(m.sections, section{name: name, size: size})
	}
	return m, nil
}

func (m *module) readImports(r *reader) error {
	n := r.uint()
	for i := 0; i < n && r.err == nil; i++ {
		r.name() // module
		r.name() // field
		switch kind := r.byte(); kind {
		case 0: // function: type index
			r.uint()
			m.imported++
		case 1: // table: reftype, limits
			r.byte()
			r.limits()
		case 2: // memory: limits
			r.limits()
		case 3: // global: valtype, mutability
			r.byte()
			r.byte()
		default:
			return fmt.Errorf("import %d: kind %d", i, kind)
		}
	}
	return r.err
}

func (m *module) readCode(r *reader) error {
	n := r.uint()
	m.bodies = make([]int, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		size := r.uint()
		m.bodies = append(m.bodies, size)
		r.off += size
	}
	if r.off > len(r.b) {
		return errors.New("truncated")
	}
	return r.err
}

// readNames reads the function-names subsection (id 1) of the name section.
func (m *module) readNames(r *reader) error {
	for r.off < len(r.b) && r.err == nil {
		id := r.byte()
		size := r.uint()
		end := r.off + size
		if id == 1 {
			n := r.uint()
			for i := 0; i < n && r.err == nil; i++ {
				idx := r.uint()
				m.names[idx] = r.name()
			}
		}
		r.off = end
	}
	return r.err
}

// reader decodes LEB128 integers and names; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.err = errors.New("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uint() int {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int(v)
		}
	}
	r.err = errors.New("bad LEB128")
	return 0
}

func (r *reader) name() string {
	n := r.uint()
	if r.err != nil || r.off+n > len(r.b) {
		r.err = errors.New("truncated name")
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *reader) limits() {
	if r.byte() == 1 {
		r.uint()
	}
	r.uint()
}
