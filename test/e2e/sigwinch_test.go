package e2e

import "syscall"

// sigwinch tells kubectl its terminal changed size, as the terminal driver does.
const sigwinch = syscall.SIGWINCH
