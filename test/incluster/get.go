package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// get prints the body of a GET of url, within 3 s: the tests' HTTP client inside pods (the
// test image's static busybox wget crashes in a pod of the pod network).
func get(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
