package script

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dop251/goja"
)

func BenchmarkZZExp(b *testing.B) {
	for _, bc := range benchCodecs {
		src, _ := os.ReadFile(filepath.Join(codecsDir, bc.model+".js"))
		top := goja.MustCompile("x.js", string(src), false)
		wrap := goja.MustCompile("w.js", "(() => {"+string(src)+"\nreturn 1;})", false)
		b.Run("new/"+bc.model, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				goja.New()
			}
		})
		b.Run("fresh-top/"+bc.model, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				rt := goja.New()
				if _, err := rt.RunProgram(top); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("reuse-wrap/"+bc.model, func(b *testing.B) {
			rt := goja.New()
			v, err := rt.RunProgram(wrap)
			if err != nil {
				b.Fatal(err)
			}
			fn, _ := goja.AssertFunction(v)
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := fn(goja.Undefined()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
