"""Use cases: each public function is one API operation or one reaction to an event."""
