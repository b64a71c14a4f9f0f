package dev.safepointkit.roots;

/**
 * A moving collector's side of relocation: where the object that starts at {@code oldAddress}
 * lives now. Must return the same answer every time it is asked about one object (a forwarding
 * pointer), since an object can be reached from several slots and frames.
 */
@FunctionalInterface
public interface ObjectMover {

    long forward(long oldAddress);
}
