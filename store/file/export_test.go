package file

// LockFile is lockFile, for the helper processes of the external tests: they
// take a lease's lock exactly as a writer does.
var LockFile = lockFile
