//! The counting allocator the bench and its profiler examples report memory with: the live
//! heap bytes of each thread, kept in a thread-local cell.
//!
//! Per thread, as `tests/week_budget.rs` counts, and for a second reason: a shared atomic
//! counter costs two atomic read-modify-writes per allocation and free, which the bench would
//! time as if the engine paid them (on a 2-core machine, ~16 a week, a few percent of it).
//! The bench allocates and measures on one thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts live heap bytes per thread, for the memory figure.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn note(bytes: isize) {
    // Not while the thread's locals are torn down: those allocations are nobody's figure.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

/// The heap bytes this thread allocated and has not freed (0 if it freed more).
pub fn live() -> usize {
    usize::try_from(LIVE.with(Cell::get)).unwrap_or(0)
}

// SAFETY: every method forwards to `System` with the caller's layout unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;
