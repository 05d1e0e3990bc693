// Command ggufdump prints the metadata and tensor table of GGUF files:
//
//	go run ./tests/testmodel/cmd/ggufdump FILE...
package main

import (
	"fmt"
	"os"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ggufdump FILE...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := dump(path); err != nil {
			fmt.Fprintln(os.Stderr, "ggufdump:", err)
			os.Exit(1)
		}
	}
}

func dump(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Printf("%s: GGUF v%d, alignment %d, data at %d, %d keys, %d tensors\n",
		path, f.Version, f.Alignment, f.DataOffset, len(f.KV), len(f.Tensors))
	for _, kv := range f.KV {
		typ := kv.Type.String()
		if kv.Type == gguf.ValArray {
			typ = fmt.Sprintf("arr[%v]", kv.ElemType)
		}
		v := fmt.Sprintf("%v", kv.Value)
		if len(v) > 72 {
			v = v[:72] + "..."
		}
		fmt.Printf("  %-44s %-9s %s\n", kv.Key, typ, v)
	}
	var params int64
	for _, t := range f.Tensors {
		n := int64(1)
		for _, x := range t.Ne {
			n *= x
		}
		params += n
		fmt.Printf("  %-34s %-5v %-22s offset %d\n", t.Name, t.Type, fmt.Sprint(t.Ne), t.Offset)
	}
	fmt.Printf("  %d parameters\n", params)
	return nil
}
