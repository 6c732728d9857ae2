package tlscert

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Store serves the identity kept in a directory to TLS servers and notices
// a certificate that another process re-issued (the dashboard and the
// appliance's update API share the files).
type Store struct {
	dir string

	mu    sync.Mutex
	want  Names
	id    Identity
	stamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Open ensures the identity in dir (see Ensure) and returns a store for it.
func Open(dir string, want Names) (s *Store, issued bool, err error) {
	s = &Store{dir: dir}
	if _, issued, err = s.Want(want); err != nil {
		return nil, false, err
	}
	return s, issued, nil
}

// Want changes the names the certificate must carry, re-issuing it if it
// lacks one, and returns the identity.
func (s *Store) Want(want Names) (Identity, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.want = want
	return s.ensureLocked()
}

func (s *Store) ensureLocked() (Identity, bool, error) {
	id, issued, err := Ensure(s.dir, s.want)
	if err != nil {
		return Identity{}, false, err
	}
	s.id = id
	s.stamp = s.statLocked()
	return id, issued, nil
}

func (s *Store) statLocked() fileStamp {
	fi, err := os.Stat(filepath.Join(s.dir, CertFile))
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// Current returns the identity, reloaded when the certificate file changed.
// If reloading fails, the identity loaded before stays in use.
func (s *Store) Current() (Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statLocked() == s.stamp {
		return s.id, nil
	}
	old := s.id
	if _, _, err := s.ensureLocked(); err != nil {
		return old, fmt.Errorf("tlscert: reloading %s: %w", s.dir, err)
	}
	return s.id, nil
}

// GetCertificate is for tls.Config.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	id, _ := s.Current()
	if id.Cert.Leaf == nil {
		return nil, fmt.Errorf("tlscert: no certificate in %s", s.dir)
	}
	return &id.Cert, nil
}
