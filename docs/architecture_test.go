package docs

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestArchitecturePackageMap: the package map of ARCHITECTURE.md §2 has
// one row per Go package of the module, and no package imports a module
// package its row does not allow.
func TestArchitecturePackageMap(t *testing.T) {
	b, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## 2. ")
	if !ok {
		t.Fatal("ARCHITECTURE.md has no section 2")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	allowed := map[string][]string{} // nil: any
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9/_-]+)` \\|.*\\| ([^|]*) \\|$")
	quoted := regexp.MustCompile("`([a-z0-9/_-]+)`")
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		may := strings.TrimSpace(m[2])
		switch may {
		case "any":
			allowed[m[1]] = nil
		default:
			list := []string{}
			for _, q := range quoted.FindAllStringSubmatch(may, -1) {
				list = append(list, q[1])
			}
			allowed[m[1]] = list
		}
	}
	if len(allowed) == 0 {
		t.Fatal("found no package rows in ARCHITECTURE.md §2")
	}

	module := modulePath(t)
	imports := moduleImports(t, module)
	for pkg, imps := range imports {
		may, listed := allowed[pkg]
		if !listed {
			t.Errorf("package %s is not in ARCHITECTURE.md §2: add a row (what it owns, what it may import)", pkg)
			continue
		}
		if may == nil {
			continue
		}
		for _, imp := range imps {
			if !slices.Contains(may, imp) {
				t.Errorf("%s imports %s, which its row in ARCHITECTURE.md §2 does not allow: change the code or, if the design changed, the row", pkg, imp)
			}
		}
	}
	for pkg := range allowed {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("ARCHITECTURE.md §2 lists %s, which is not a package of the module", pkg)
		}
	}
}

func modulePath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no module line")
	}
	return string(m[1])
}

// moduleImports maps every directory of the module holding Go files (as
// a path relative to the module root) to the module packages its non-test
// files import, as paths relative to the root too.
func moduleImports(t *testing.T, module string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != ".." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, err := filepath.Rel("..", filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		if _, ok := out[pkg]; !ok {
			out[pkg] = []string{}
		}
		if strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			p, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return err
			}
			if own, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(out[pkg], own) {
				out[pkg] = append(out[pkg], own)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
