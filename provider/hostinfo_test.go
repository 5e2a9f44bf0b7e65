package provider

import "testing"

func TestParseHostFacts(t *testing.T) {
	t.Parallel()
	good := "cpus=8\nmemkb=65843212\ndiskkb=1031018216\nkernel=6.8.0-45-generic\narch=x86_64\nos=Linux\n" +
		"osimage=Ubuntu 22.04.4 LTS\nmachineid=abc\nbootid=def\n"
	f, err := parseHostFacts([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if f.CPUs != 8 || f.MemoryBytes != 65843212*1024 || f.DiskBytes != 1031018216*1024 {
		t.Errorf("capacity = %d cpus, %d mem, %d disk", f.CPUs, f.MemoryBytes, f.DiskBytes)
	}
	if f.Arch != "amd64" || f.OperatingSystem != "linux" || f.OSImage != "Ubuntu 22.04.4 LTS" || f.Kernel != "6.8.0-45-generic" {
		t.Errorf("info = %+v", f)
	}
	bad := []string{
		"",
		"cpus=0\nmemkb=1\ndiskkb=1\narch=x86_64\nos=Linux",
		"cpus=2\nmemkb=\ndiskkb=1\narch=x86_64\nos=Linux",
		"cpus=2\nmemkb=5\ndiskkb=\narch=x86_64\nos=Linux",
		"cpus=2\nmemkb=5\ndiskkb=7\narch=\nos=Linux",
		"cpus=two\nmemkb=5\ndiskkb=7\narch=aarch64\nos=Linux",
	}
	for _, b := range bad {
		if _, err := parseHostFacts([]byte(b)); err == nil {
			t.Errorf("parseHostFacts(%q) succeeded, want error", b)
		}
	}
	if f, _ := parseHostFacts([]byte("cpus=2\nmemkb=5\ndiskkb=7\narch=aarch64\nos=Linux")); f.Arch != "arm64" {
		t.Errorf("aarch64 -> %q, want arm64", f.Arch)
	}
}
