package dev.safepointkit.roots;

/**
 * A moving collector's side of relocation: where the object that starts at {@code oldAddress}
 * lives now. Must return the same answer every time it is asked about one object (a forwarding
 * pointer), since an object can be reached from several slots and frames.
 */
@FunctionalInterface
public interface ObjectMover {

    /**
     * Where the object that started at {@code oldAddress} is now. A copying collector typically
     * copies it on the first call and answers from its forwarding pointer after. Called on the
     * collecting thread while the world is stopped.
     *
     * @param oldAddress the value found in a base slot, never 0 (null slots are not asked about)
     * @return the object's address now; {@code oldAddress} itself for an object that did not move
     */
    long forward(long oldAddress);
}
