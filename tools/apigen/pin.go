package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// The generator reads the service models pinned in the repository, below
// tools/apigen/models, so that what it generates never depends on the
// botocore a machine has installed. `go run ./tools/apigen -update-models`
// refreshes them from the installed botocore (or -botocore DIR) and records
// its version in models/botocore-version.
//
// A pinned model is botocore's service-2.json with every documentation
// string removed (Keyfort copies facts from the models, not AWS's prose),
// written with one-space indentation so that a refresh reads as a diff. The
// order of every object's members is kept: the generator depends on it.

// modelsDir is the folder of the pinned models below the module root.
const modelsDir = "tools/apigen/models"

// versionFile names the file, in modelsDir, that records the botocore version
// the pinned models come from.
const versionFile = "botocore-version"

// pinnedModelPath returns the path of a pinned service model below root.
func pinnedModelPath(root, service, version string) string {
	return filepath.Join(root, modelsDir, service, version, "service-2.json")
}

// droppedKeys are the model members left out of a pinned model.
var droppedKeys = map[string]bool{"documentation": true, "documentationUrl": true}

// stripModel returns the JSON document data without the members named in
// droppedKeys, at any depth, its other members in their order, indented.
func stripModel(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out bytes.Buffer
	if err := copyValue(dec, &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("strip model: data after the document")
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, out.Bytes(), "", " "); err != nil {
		return nil, fmt.Errorf("strip model: %w", err)
	}
	indented.WriteByte('\n')
	return indented.Bytes(), nil
}

// copyValue copies the next JSON value of dec to out, compact, dropping the
// members named in droppedKeys.
func copyValue(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("strip model: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			first := true
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return fmt.Errorf("strip model: %w", err)
				}
				key, ok := k.(string)
				if !ok {
					return fmt.Errorf("strip model: object key %v", k)
				}
				if droppedKeys[key] {
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						return fmt.Errorf("strip model: %w", err)
					}
					continue
				}
				if !first {
					out.WriteByte(',')
				}
				first = false
				writeScalar(out, key)
				out.WriteByte(':')
				if err := copyValue(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := copyValue(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		default:
			return fmt.Errorf("strip model: unexpected %v", t)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return fmt.Errorf("strip model: %w", err)
		}
		return nil
	default:
		writeScalar(out, t)
		return nil
	}
}

// writeScalar writes a string, json.Number, bool or nil as JSON, without
// escaping HTML characters (patterns in the models use < and >).
func writeScalar(out *bytes.Buffer, v any) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)           // a bytes.Buffer does not fail; v is a decoded token
	out.Truncate(out.Len() - 1) // Encode's newline
}

// botocoreVersionRE finds the version in botocore/__init__.py.
var botocoreVersionRE = regexp.MustCompile(`(?m)^__version__\s*=\s*['"]([^'"]+)['"]`)

// updateModels replaces the pinned models below root with the installed
// botocore's, stripped, and records botocore's version.
func updateModels(botocoreDir, root string) error {
	initPy, err := os.ReadFile(filepath.Join(botocoreDir, "__init__.py"))
	if err != nil {
		return fmt.Errorf("update models: botocore version: %w", err)
	}
	m := botocoreVersionRE.FindSubmatch(initPy)
	if m == nil {
		return fmt.Errorf("update models: no __version__ in %s", filepath.Join(botocoreDir, "__init__.py"))
	}
	for _, svc := range services {
		src := filepath.Join(botocoreDir, "data", svc.Model, svc.Version, "service-2.json.gz")
		data, err := readGzip(src)
		if err != nil {
			return fmt.Errorf("update models: %w", err)
		}
		pinned, err := stripModel(data)
		if err != nil {
			return fmt.Errorf("update models: %s: %w", src, err)
		}
		dst := pinnedModelPath(root, svc.Model, svc.Version)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("update models: %w", err)
		}
		if err := os.WriteFile(dst, pinned, 0o644); err != nil {
			return fmt.Errorf("update models: %w", err)
		}
	}
	v := filepath.Join(root, modelsDir, versionFile)
	if err := os.WriteFile(v, append(m[1], '\n'), 0o644); err != nil {
		return fmt.Errorf("update models: %w", err)
	}
	return nil
}

// readGzip returns the decompressed content of a gzip file.
func readGzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}
