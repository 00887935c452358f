/**
 * Regression losses of scikit-learn's `_sgd_fast.pyx` (1.2.x): `loss(p, y)` and its
 * derivative in the prediction `dloss(p, y)`, with the same branches and the same order of
 * floating-point operations (so results match bit for bit).
 */

/** Names of the supported losses (scikit-learn's `loss=` strings). */
export type LossName = 'squared_error' | 'huber' | 'epsilon_insensitive' | 'squared_epsilon_insensitive';

export const LOSS_NAMES: readonly LossName[] = [
  'squared_error',
  'huber',
  'epsilon_insensitive',
  'squared_epsilon_insensitive',
];

/** A convex regression loss. */
export interface Loss {
  loss(p: number, y: number): number;
  dloss(p: number, y: number): number;
}

/** `SquaredLoss`. */
class SquaredLoss implements Loss {
  loss(p: number, y: number): number {
    return 0.5 * (p - y) * (p - y);
  }
  dloss(p: number, y: number): number {
    return p - y;
  }
}

/** `Huber(c)`: quadratic for |p - y| <= c, linear beyond. */
class Huber implements Loss {
  constructor(private readonly c: number) {}
  loss(p: number, y: number): number {
    const r = p - y;
    const absR = Math.abs(r);
    if (absR <= this.c) return 0.5 * r * r;
    return this.c * absR - 0.5 * this.c * this.c;
  }
  dloss(p: number, y: number): number {
    const r = p - y;
    const absR = Math.abs(r);
    if (absR <= this.c) return r;
    if (r > 0.0) return this.c;
    return -this.c;
  }
}

/** `EpsilonInsensitive(epsilon)`: max(0, |y - p| - epsilon), the SVR loss. */
class EpsilonInsensitive implements Loss {
  constructor(private readonly epsilon: number) {}
  loss(p: number, y: number): number {
    const ret = Math.abs(y - p) - this.epsilon;
    return ret > 0 ? ret : 0;
  }
  dloss(p: number, y: number): number {
    if (y - p > this.epsilon) return -1;
    if (p - y > this.epsilon) return 1;
    return 0;
  }
}

/** `SquaredEpsilonInsensitive(epsilon)`: max(0, |y - p| - epsilon)^2. */
class SquaredEpsilonInsensitive implements Loss {
  constructor(private readonly epsilon: number) {}
  loss(p: number, y: number): number {
    const ret = Math.abs(y - p) - this.epsilon;
    return ret > 0 ? ret * ret : 0;
  }
  dloss(p: number, y: number): number {
    const z = y - p;
    if (z > this.epsilon) return -2 * (z - this.epsilon);
    if (z < -this.epsilon) return 2 * (-z - this.epsilon);
    return 0;
  }
}

/** Mirrors `BaseSGD._get_loss_function`: epsilon feeds every loss except squared_error. */
export function makeLoss(name: LossName, epsilon: number): Loss {
  switch (name) {
    case 'squared_error':
      return new SquaredLoss();
    case 'huber':
      return new Huber(epsilon);
    case 'epsilon_insensitive':
      return new EpsilonInsensitive(epsilon);
    case 'squared_epsilon_insensitive':
      return new SquaredEpsilonInsensitive(epsilon);
  }
}
