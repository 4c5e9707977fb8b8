// Command kstatus prints the health that Flux's and Argo CD's kstatus checks compute for one
// Kubernetes object, read as JSON on standard input (`kubectl get … -o json | kstatus`):
// one line `STATUS: MESSAGE`, e.g. `Current: Resource is Ready`. The tests use it to check
// what GitOps tools see of a SimulationSeries at each stage of a pass.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading standard input: %v", err)
	}
	// Decoded as the API machinery decodes objects (integers as int64, as kstatus expects).
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(raw); err != nil {
		fail("standard input is not one Kubernetes object: %v", err)
	}
	result, err := status.Compute(object)
	if err != nil {
		fail("computing the status: %v", err)
	}
	fmt.Printf("%s: %s\n", result.Status, result.Message)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(2)
}
