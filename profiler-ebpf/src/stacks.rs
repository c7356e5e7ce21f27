//! Taking the current task's user and kernel stacks into the shared stack map, losses counted.

use aya_ebpf::{bindings::BPF_F_USER_STACK, programs::tracing::StackIdContext};
use profiler_common::{Counter, NO_STACK};

use crate::maps::{STACKS, bump};

/// `bpf_get_stackid` answers -EFAULT when there is no stack of that kind to take: a kernel thread
/// has no user stack, a sample taken in user mode has no kernel stack. That is not a loss.
const EFAULT: i32 = 14;

/// Stack ids of the current task, [`NO_STACK`] where there is none or it was lost.
pub struct Taken {
    pub user: i32,
    pub kernel: i32,
}

/// The user stack's id by frame pointers.
pub struct User {
    pub id: i32,
    /// The task has no user stack (a kernel thread).
    pub no_user: bool,
}

#[inline(always)]
pub fn take<C: StackIdContext>(ctx: &C) -> Taken {
    let kernel = kernel(ctx);
    Taken {
        user: user(ctx).id,
        kernel,
    }
}

#[inline(always)]
pub fn kernel<C: StackIdContext>(ctx: &C) -> i32 {
    match ctx.get_stackid(&STACKS, 0) {
        Ok(id) => id as i32,
        Err(err) => {
            if err != -EFAULT {
                bump(Counter::KernelStackLost);
            }
            NO_STACK
        }
    }
}

#[inline(always)]
pub fn user<C: StackIdContext>(ctx: &C) -> User {
    match ctx.get_stackid(&STACKS, u64::from(BPF_F_USER_STACK)) {
        Ok(id) => User {
            id: id as i32,
            no_user: false,
        },
        Err(err) if err == -EFAULT => User {
            id: NO_STACK,
            no_user: true,
        },
        Err(_) => {
            bump(Counter::UserStackLost);
            User {
                id: NO_STACK,
                no_user: false,
            }
        }
    }
}
