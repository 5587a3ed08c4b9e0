package cncf.collaborator;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The operation names a {@link Collaborator} answers, readable by the hub at load
 * time (before the instance exists). Names are matched case-insensitively with
 * {@code -} and {@code _} ignored, as every cncf operation name. The hub also reads
 * it from superclasses and implemented interfaces (names are merged).
 */
@Documented
@Inherited
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
public @interface Operations {
    String[] value();
}
