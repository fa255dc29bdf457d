package feeds

import (
	"context"
	"sync"
	"time"
)

// ActiveSet tells the detector which indicators the lifecycle and the
// export rules have retired, for one principal (the detector's
// organisation). Refresh recomputes it; indicators it has not seen yet
// are allowed, so that a new indicator matches before the next refresh.
type ActiveSet struct {
	Exporter *Exporter
	Request  Request

	mu       sync.RWMutex
	inactive map[string]string
}

// Refresh recomputes the set.
func (a *ActiveSet) Refresh(ctx context.Context) error {
	sel, err := a.Exporter.Select(ctx, a.Request)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.inactive = sel.Inactive
	a.mu.Unlock()
	return nil
}

// Allow reports whether indicator id may match (detect's
// StoreIndicators.Filter).
func (a *ActiveSet) Allow(id string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	_, out := a.inactive[id]
	return !out
}

// Reason says why id is retired ("" when it is not).
func (a *ActiveSet) Reason(id string) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.inactive[id]
}

// Run refreshes the set every period until ctx ends; a failed refresh
// keeps the previous set (logged by the caller through onErr when set).
func (a *ActiveSet) Run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := a.Refresh(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
