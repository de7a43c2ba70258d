//! axum clones a route's whole service stack for every request: cloning a Palisade service must
//! copy nothing that allocates (no `Vec`, `String` or map), only bump a reference count. Each
//! service of `for_each_service!` is cloned around an inner service that does not allocate,
//! under dhat's heap profiler, which counts allocations. The bench `clone` measures the time.

use palisade_benches::for_each_service;

// dhat's heap profiler counts every allocation (one test in this binary: it is process-wide).
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// An inner service stand-in whose clone does not allocate.
#[derive(Clone, Copy, Debug)]
struct Inner;

/// How many allocations 100 clones of `service` made (each dropped at once).
fn allocations_of_clones<S: Clone>(service: &S) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..100 {
        drop(std::hint::black_box(service.clone()));
    }
    dhat::HeapStats::get().total_blocks - before
}

#[test]
fn every_service_clones_without_allocating() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // The count sees allocations: a `Vec` clone is counted, so a zero below means something.
    assert_eq!(allocations_of_clones(&vec![1_u8, 2, 3]), 100);
    let mut failures = Vec::new();
    let mut checked = 0;
    macro_rules! check {
        ($name:literal, $service:expr) => {{
            let service = $service;
            checked += 1;
            let allocations = allocations_of_clones(&service);
            if allocations != 0 {
                failures.push(format!(
                    "{}: {allocations} allocations in 100 clones",
                    $name
                ));
            }
        }};
    }
    for_each_service!(Inner, check);
    assert!(checked >= 19, "{checked} services");
    assert!(
        failures.is_empty(),
        "clones that allocate:\n{}",
        failures.join("\n")
    );
}
