package dev.safepointkit.patch;

import dev.safepointkit.events.internal.Libc;

/**
 * Makes every thread of the process serialize its instruction stream before it next runs user
 * code: {@code membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)}, after one registration
 * per process ({@code MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE}).
 *
 * <p>Why this and not an mprotect: Intel's cross-modifying-code rule asks the processor that runs
 * modified code to execute a serializing instruction after the store and before the new bytes.
 * The kernel's SYNC_CORE barrier interrupts every CPU currently running a thread of this process
 * and has it execute a core-serializing instruction before it returns to user code; threads not
 * running get one on their next return from the kernel. A TLB shootdown after mprotect is no
 * such guarantee: the kernel may invalidate without an interrupt, and with no change of
 * permission there is no shootdown at all.
 *
 * <p>Thread safe: registration happens once, on the first use, and its outcome is kept.
 */
final class CoreSync {
    private CoreSync() {
    }

    /** The registration's outcome: null when it worked, else why it did not. */
    private static final class Registration {
        static final String FAILURE = register();

        private static String register() {
            if (!"amd64".equals(System.getProperty("os.arch")) && !"x86_64".equals(System.getProperty("os.arch"))) {
                return "membarrier is called by its x86-64 system call number, and this is " + System.getProperty("os.arch");
            }
            try {
                long supported = Libc.membarrier(Libc.MEMBARRIER_CMD_QUERY);
                if ((supported & Libc.MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) == 0
                        || (supported & Libc.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) == 0) {
                    return "the kernel's membarrier does not offer PRIVATE_EXPEDITED_SYNC_CORE (commands 0x"
                            + Long.toHexString(supported) + "; Linux 4.16 or later on x86-64 does)";
                }
                Libc.membarrier(Libc.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE);
                return null;
            } catch (Libc.NativeException e) {
                return e.getMessage();
            }
        }
    }

    /**
     * Registers the process for core-serializing barriers, once.
     *
     * @throws IllegalStateException naming the cause if this kernel cannot give them; code cannot
     *     then be patched while threads run
     */
    static void require() {
        String failure = Registration.FAILURE;
        if (failure != null) {
            throw new IllegalStateException("code patching needs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)"
                    + " so that other threads serialize before they run patched code: " + failure);
        }
    }

    /** Every thread of the process serializes before it runs user code again. */
    static void serializeAllThreads() {
        require();
        Libc.membarrier(Libc.MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE);
    }
}
