package api

// SetBeforeGuardedWrite makes s call f between a handler's early
// escalation check and its transaction (see guardedWrite), so that a test
// can change the policy in that window.
// A nil f removes it.
func SetBeforeGuardedWrite(s *Server, f func()) {
	if f == nil {
		s.beforeGuardedWrite.Store(nil)
		return
	}
	s.beforeGuardedWrite.Store(&f)
}
