"""Public status pages: which monitors a page shows under which public
names, and the incidents and maintenance its owners announce on it."""
