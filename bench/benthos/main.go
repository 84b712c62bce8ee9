// A minimal Benthos build for `make bench` (bench/benthos.ts): the Kafka (franz-go) input, the HTTP client
// output and the pure processors, nothing else. Pinned by go.mod and go.sum; built into .cache/benthos/.
package main

import (
	"context"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	"github.com/benthosdev/benthos/v4/public/service"
)

func main() {
	service.RunCLI(context.Background())
}
