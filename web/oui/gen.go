//go:build ignore

// gen turns the IEEE MA-L registry (Debian's ieee-data package,
// /usr/share/ieee-data/oui.csv) into oui.txt.gz: one "XXXXXX<TAB>name" line
// per assignment, sorted, so that the vendor table ships inside the binary.
//
//	go run gen.go [/usr/share/ieee-data/oui.csv]
package main

import (
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
)

func main() {
	src := "/usr/share/ieee-data/oui.csv"
	if len(os.Args) > 1 {
		src = os.Args[1]
	}
	f, err := os.Open(src)
	if err != nil {
		log.Fatal(err)
	}
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	seen := map[string]bool{}
	var lines []string
	for _, rec := range recs[1:] {
		if len(rec) < 3 || rec[0] != "MA-L" || len(rec[1]) != 6 || seen[rec[1]] {
			continue
		}
		seen[rec[1]] = true
		name := strings.Join(strings.Fields(rec[2]), " ")
		lines = append(lines, strings.ToUpper(rec[1])+"\t"+name)
	}
	slices.Sort(lines)
	out, err := os.Create("oui.txt.gz")
	if err != nil {
		log.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(out, gzip.BestCompression)
	zw.ModTime = zw.ModTime.UTC() // zero: reproducible output
	for _, l := range lines {
		fmt.Fprintln(zw, l)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
}
