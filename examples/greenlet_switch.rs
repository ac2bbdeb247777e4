//! The classic greenlet demo: `test1` and `test2` switch back and forth by hand. Prints
//! exactly `12`, `56`, `34`, `78`, one per line: gr1 prints 12 and switches to gr2, which
//! prints 56 and switches back; gr1 prints 34 and switches to gr2 again, which prints 78 and
//! finishes, handing control back to its parent, the main context.

#[path = "common/args.rs"]
mod args;

use std::cell::OnceCell;
use std::rc::Rc;

use greenrt::coro::Greenlet;

fn main() {
    args::Cli::new(
        "greenlet_switch",
        "test1 and test2 switch by hand: prints 12, 56, 34, 78",
    )
    .mirrors("greenlet.switch, course note 1 (pools, callbacks, gevent, asyncio)")
    .parse();
    // Each function needs the other's greenlet, so they meet through cells filled below.
    let gr1_cell: Rc<OnceCell<Greenlet>> = Rc::default();
    let gr2_cell: Rc<OnceCell<Greenlet>> = Rc::default();

    let gr2_for_test1 = gr2_cell.clone();
    let test1 = move |()| {
        println!("12");
        gr2_for_test1
            .get()
            .expect("made before the first switch")
            .switch(()); // run test2
        println!("34");
        gr2_for_test1.get().expect("made").switch(()); // back to where test2 stopped
    };
    let gr1_for_test2 = gr1_cell.clone();
    let test2 = move |()| {
        println!("56");
        gr1_for_test2.get().expect("made").switch(()); // back to where test1 stopped
        println!("78");
    };

    let gr1 = Greenlet::new(test1);
    let gr2 = Greenlet::new(test2);
    let _ = gr1_cell.set(gr1.clone());
    let _ = gr2_cell.set(gr2);
    gr1.switch(()); // start gr1; returns when a greenlet whose parent is main finishes
}
