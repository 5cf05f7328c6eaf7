// JinjaExpression evaluation with Python/Jinja semantics: attribute access tries the Python attribute (a method)
// before the dictionary key, subscription the key before the attribute; a missing key or attribute is
// Undefined, and using Undefined as a value (attribute of it, arithmetic, ordering, calling) is an error,
// while printing it gives "" and testing it gives false.

import Foundation

extension TemplateRenderer {
    func evaluate(_ expression: JinjaExpression) throws(ChatTemplateError) -> JinjaValue {
        switch expression {
        case .literal(let literal, _):
            switch literal {
            case .none: return .none
            case .bool(let flag): return .bool(flag)
            case .int(let number): return .int(number)
            case .double(let number): return .double(number)
            case .string(let text): return .string(text)
            }
        case .name(let name, _):
            return lookup(name)
        case .list(let items, _):
            var values: [JinjaValue] = []
            for item in items { values.append(try evaluate(item)) }
            return .array(values)
        case .tuple(let items, _):
            var values: [JinjaValue] = []
            for item in items { values.append(try evaluate(item)) }
            return .tuple(values)
        case .dictionary(let pairs, let location):
            var dictionary = JinjaDictionary()
            for pair in pairs {
                let key = try evaluate(pair.key)
                guard dictionary.set(key, try evaluate(pair.value)) else {
                    throw location.runtimeError("unhashable type: '\(key.typeName)'")
                }
            }
            return .dictionary(dictionary)
        case .attribute(let base, let name, let location):
            return try attribute(of: try evaluate(base), name, location)
        case .index(let base, let index, let location):
            return try item(of: try evaluate(base), try evaluate(index), location)
        case .slice(let base, let start, let stop, let step, let location):
            return try slice(try evaluate(base), start: try start.map { expression throws(ChatTemplateError) in try evaluate(expression) },
                             stop: try stop.map { expression throws(ChatTemplateError) in try evaluate(expression) },
                             step: try step.map { expression throws(ChatTemplateError) in try evaluate(expression) }, location)
        case .call(let callee, let arguments, let location):
            let function = try evaluate(callee)
            return try call(function, try evaluateArguments(arguments, location), location)
        case .filter(let base, let name, let arguments, let location):
            let value = try evaluate(base)
            return try applyFilter(name, value, try evaluateArguments(arguments, location))
        case .test(let base, let name, let negated, let arguments, let location):
            let value = try evaluate(base)
            let result = try applyTest(name, value, try evaluateArguments(arguments, location))
            return .bool(result != negated)
        case .unary(let operation, let operand, let location):
            let value = try evaluate(operand)
            switch operation {
            case .not: return .bool(!value.isTruthy)
            case .plus, .negate:
                if case .undefined(let reason) = value { throw location.runtimeError(reason) }
                switch value {
                case .int(let number): return .int(operation == .negate ? -number : number)
                case .bool(let flag): return .int(operation == .negate ? (flag ? -1 : 0) : (flag ? 1 : 0))
                case .double(let number): return .double(operation == .negate ? -number : number)
                default: throw location.runtimeError("bad operand type for unary \(operation == .negate ? "-" : "+"): '\(value.typeName)'")
                }
            }
        case .binary(let operation, let leftExpression, let rightExpression, let location):
            let left = try evaluate(leftExpression)
            switch operation {
            case .and: return left.isTruthy ? try evaluate(rightExpression) : left
            case .or: return left.isTruthy ? left : try evaluate(rightExpression)
            case .concatenate: return .string(left.string + (try evaluate(rightExpression)).string)
            case .power where isConstant(leftExpression) && !isConstant(rightExpression)
                && (left.numericValue.map { $0 < 0 || ($0 == 0 && $0.sign == .minus) } ?? false):
                // Jinja folds a constant base like `-2` and writes it unparenthesized into the Python it
                // generates, `(-2 ** l_x)`, which Python reads as -(2 ** x). Reproduce that.
                let magnitude = try arithmetic(.subtract, .int(0), left, location)
                let power = try arithmetic(.power, magnitude, try evaluate(rightExpression), location)
                return try arithmetic(.subtract, .int(0), power, location)
            default: return try arithmetic(operation, left, try evaluate(rightExpression), location)
            }
        case .compare(let first, let operations, let location):
            var left = try evaluate(first)
            for (operation, rightExpression) in operations {
                let right = try evaluate(rightExpression)
                guard try compare(operation, left, right, location) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let then, let condition, let otherwise, _):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            if let otherwise { return try evaluate(otherwise) }
            return .undefined("the inline if-expression evaluated to false and no else section was defined")
        }
    }

    func attribute(of rawValue: JinjaValue, _ name: String, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> JinjaValue {
        let value = rawValue.demoted
        switch value {
        case .undefined(let reason):
            throw location.runtimeError(reason)
        case .dictionary(let dictionary):
            if let method = method(of: value, name, location) { return method }
            if let found = dictionary[name] { return found }
            return .undefined("'dict object' has no attribute '\(name)'")
        case .namespace(let namespace):
            return namespace.attributes[name] ?? .undefined("'Namespace' object has no attribute '\(name)'")
        default:
            if let method = method(of: value, name, location) { return method }
            return .undefined("'\(value.typeName) object' has no attribute '\(name)'")
        }
    }

    func item(of rawValue: JinjaValue, _ rawKey: JinjaValue, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> JinjaValue {
        let value = rawValue.demoted
        let key = rawKey.demoted
        switch value {
        case .undefined(let reason):
            throw location.runtimeError(reason)
        case .dictionary(let dictionary):
            if let found = dictionary.value(for: key) { return found }
            if case .string(let name) = key {
                return method(of: value, name, location) ?? .undefined("'dict object' has no attribute '\(name)'")
            }
            return .undefined("'dict object' has no attribute \(key.representation)")
        case .range(let range):
            if let index = key.integerValue {
                let resolved = index < 0 ? index + range.count : index
                if resolved >= 0 && resolved < range.count { return .int(range.start + resolved * range.step) }
                return .undefined("'range object' has no element \(index)")
            }
        case .array(let items), .tuple(let items):
            if let index = key.integerValue {
                let resolved = index < 0 ? index + items.count : index
                if resolved >= 0 && resolved < items.count { return items[resolved] }
                return .undefined("'\(value.typeName) object' has no element \(index)")
            }
        case .string(let text):
            if let index = key.integerValue {
                let scalars = Array(text.unicodeScalars)
                let resolved = index < 0 ? index + scalars.count : index
                if resolved >= 0 && resolved < scalars.count { return .string(String(scalars[resolved])) }
                return .undefined("'str object' has no element \(index)")
            }
        case .namespace(let namespace):
            if case .string(let name) = key, let found = namespace.attributes[name] { return found }
        default:
            break
        }
        if case .string(let name) = key { return try attribute(of: value, name, location) }
        return .undefined("'\(value.typeName) object' has no element \(key.representation)")
    }

    /// Python slicing `value[start:stop:step]` of a list, tuple or string.
    func slice(_ value: JinjaValue, start: JinjaValue?, stop: JinjaValue?, step: JinjaValue?, _ location: TemplateSourceLocation)
        throws(ChatTemplateError) -> JinjaValue
    {
        func bound(_ value: JinjaValue?) throws(ChatTemplateError) -> Int? {
            guard let value, !(value.isUndefined) else { return nil }
            if case .none = value { return nil }
            guard let number = value.integerValue else {
                throw location.runtimeError("slice indices must be integers or None")
            }
            return number
        }
        let stepValue = try bound(step) ?? 1
        guard stepValue != 0 else { throw location.runtimeError("slice step cannot be zero") }
        func indices(_ count: Int) throws(ChatTemplateError) -> [Int] {
            func clamp(_ index: Int?, _ defaultValue: Int) -> Int {
                guard var index else { return defaultValue }
                if index < 0 { index += count }
                if stepValue > 0 { return min(max(index, 0), count) }
                return min(max(index, -1), count - 1)
            }
            let from = clamp(try bound(start), stepValue > 0 ? 0 : count - 1)
            let to = clamp(try bound(stop), stepValue > 0 ? count : -1)
            var result: [Int] = []
            var index = from
            while stepValue > 0 ? index < to : index > to {
                result.append(index)
                index += stepValue
            }
            return result
        }
        switch value {
        case .array(let items): return .array(try indices(items.count).map { items[$0] })
        case .range(let range):
            // A slice of a range is a range; rebuild it from the selected elements.
            let selected = try indices(range.count).map { range.start + $0 * range.step }
            let newStep = range.step * stepValue
            guard let first = selected.first else { return .range(JinjaRange(start: 0, stop: 0, step: 1)) }
            return .range(JinjaRange(start: first, stop: first + selected.count * newStep, step: newStep))
        case .tuple(let items): return .tuple(try indices(items.count).map { items[$0] })
        case .string(let text):
            let scalars = Array(text.unicodeScalars)
            var result = String.UnicodeScalarView()
            for index in try indices(scalars.count) { result.append(scalars[index]) }
            return .string(String(result))
        case .undefined(let reason): throw location.runtimeError(reason)
        default: throw location.runtimeError("'\(value.typeName)' object is not subscriptable")
        }
    }

    func arithmetic(_ operation: JinjaBinaryOperator, _ rawLeft: JinjaValue, _ rawRight: JinjaValue, _ location: TemplateSourceLocation)
        throws(ChatTemplateError) -> JinjaValue
    {
        // Markup (from `|safe` or `|escape`) + str escapes the plain operand, as markupsafe does.
        if operation == .add, let markup = markupConcatenation(rawLeft, rawRight) { return markup }
        let left = rawLeft.demoted
        let right = rawRight.demoted
        if case .undefined(let reason) = left { throw location.runtimeError(reason) }
        if case .undefined(let reason) = right { throw location.runtimeError(reason) }
        func typeError() -> ChatTemplateError {
            location.runtimeError(
                "unsupported operand type(s) for \(operation.rawValue): '\(left.typeName)' and '\(right.typeName)'")
        }
        if let leftNumber = left.integerValue, let rightNumber = right.integerValue {
            switch operation {
            case .add, .subtract, .multiply:
                let (result, overflow) = operation == .add ? leftNumber.addingReportingOverflow(rightNumber)
                    : operation == .subtract ? leftNumber.subtractingReportingOverflow(rightNumber)
                    : leftNumber.multipliedReportingOverflow(by: rightNumber)
                guard !overflow else { throw location.runtimeError("integer overflow in \(operation.rawValue)") }
                return .int(result)
            case .divide:
                guard rightNumber != 0 else { throw location.runtimeError("division by zero") }
                return .double(Double(leftNumber) / Double(rightNumber))
            case .floorDivide, .modulo:
                guard rightNumber != 0 else { throw location.runtimeError("integer division or modulo by zero") }
                var quotient = leftNumber / rightNumber
                if (leftNumber % rightNumber != 0) && ((leftNumber < 0) != (rightNumber < 0)) { quotient -= 1 }
                return .int(operation == .floorDivide ? quotient : leftNumber - quotient * rightNumber)
            case .power:
                guard rightNumber >= 0 else {
                    guard leftNumber != 0 else { throw location.runtimeError("0.0 cannot be raised to a negative power") }
                    return .double(pow(Double(leftNumber), Double(rightNumber)))
                }
                var result = 1
                for _ in 0..<rightNumber {
                    let (product, overflow) = result.multipliedReportingOverflow(by: leftNumber)
                    guard !overflow else { throw location.runtimeError("integer overflow in **") }
                    result = product
                }
                return .int(result)
            default: throw typeError()
            }
        }
        if let leftNumber = left.numericValue, let rightNumber = right.numericValue {
            switch operation {
            case .add: return .double(leftNumber + rightNumber)
            case .subtract: return .double(leftNumber - rightNumber)
            case .multiply: return .double(leftNumber * rightNumber)
            case .divide:
                guard rightNumber != 0 else { throw location.runtimeError("float division by zero") }
                return .double(leftNumber / rightNumber)
            case .floorDivide:
                guard rightNumber != 0 else { throw location.runtimeError("float floor division by zero") }
                return .double((leftNumber / rightNumber).rounded(.down))
            case .modulo:
                guard rightNumber != 0 else { throw location.runtimeError("float modulo") }
                let remainder = leftNumber.truncatingRemainder(dividingBy: rightNumber)
                return .double(remainder != 0 && (remainder < 0) != (rightNumber < 0) ? remainder + rightNumber : remainder)
            case .power:
                guard leftNumber != 0 || rightNumber >= 0 else {
                    throw location.runtimeError("0.0 cannot be raised to a negative power")
                }
                return .double(pow(leftNumber, rightNumber))
            default: throw typeError()
            }
        }
        switch (operation, left, right) {
        case (.add, .string(let leftText), .string(let rightText)): return .string(leftText + rightText)
        case (.add, .array(let leftItems), .array(let rightItems)): return .array(leftItems + rightItems)
        case (.add, .tuple(let leftItems), .tuple(let rightItems)): return .tuple(leftItems + rightItems)
        case (.multiply, .string(let text), _), (.multiply, _, .string(let text)):
            guard let count = (left.integerValue ?? right.integerValue) else { throw typeError() }
            guard count <= 0 || text.unicodeScalars.count <= TemplateRenderer.maximumOutputScalars / count else {
                throw location.runtimeError("string repetition result too large")
            }
            return .string(String(repeating: text, count: max(count, 0)))
        case (.multiply, .tuple(let items), _), (.multiply, _, .tuple(let items)):
            guard let count = (left.integerValue ?? right.integerValue) else { throw typeError() }
            guard count <= 0 || items.count <= TemplateRenderer.maximumOutputScalars / count else {
                throw location.runtimeError("tuple repetition result too large")
            }
            return .tuple(Array([[JinjaValue]](repeating: items, count: max(count, 0)).joined()))
        case (.multiply, .array(let items), _), (.multiply, _, .array(let items)):
            guard let count = (left.integerValue ?? right.integerValue) else { throw typeError() }
            guard count <= 0 || items.count <= TemplateRenderer.maximumOutputScalars / count else {
                throw location.runtimeError("list repetition result too large")
            }
            return .array(Array([[JinjaValue]](repeating: items, count: max(count, 0)).joined()))
        case (.modulo, .string(let format), _):
            return .string(try percentFormat(format, right, location))
        default:
            if operation == .add, case .string = left {
                throw location.runtimeError("can only concatenate str (not \"\(right.typeName)\") to str")
            }
            throw typeError()
        }
    }

    func compare(_ operation: JinjaCompareOperator, _ left: JinjaValue, _ right: JinjaValue, _ location: TemplateSourceLocation)
        throws(ChatTemplateError) -> Bool
    {
        switch operation {
        case .equal: return left.equals(right)
        case .notEqual: return !left.equals(right)
        case .contains: return try contains(right, left, location)
        case .notContains: return !(try contains(right, left, location))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order = try ordering(left, right, operation.rawValue, location)
            switch operation {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }

    /// -1, 0 or 1 as Python orders numbers, strings (by code point) and sequences.
    func ordering(_ rawLeft: JinjaValue, _ rawRight: JinjaValue, _ symbol: String, _ location: TemplateSourceLocation)
        throws(ChatTemplateError) -> Int
    {
        let left = rawLeft.demoted
        let right = rawRight.demoted
        if case .undefined(let reason) = left { throw location.runtimeError(reason) }
        if case .undefined(let reason) = right { throw location.runtimeError(reason) }
        if let leftNumber = left.integerValue, let rightNumber = right.integerValue {
            return leftNumber < rightNumber ? -1 : leftNumber > rightNumber ? 1 : 0
        }
        if let leftNumber = left.numericValue, let rightNumber = right.numericValue {
            return leftNumber < rightNumber ? -1 : leftNumber > rightNumber ? 1 : 0
        }
        switch (left, right) {
        case (.string(let leftText), .string(let rightText)):
            if leftText.unicodeScalars.elementsEqual(rightText.unicodeScalars) { return 0 }
            return leftText.unicodeScalars.lexicographicallyPrecedes(rightText.unicodeScalars) ? -1 : 1
        case (.array(let leftItems), .array(let rightItems)), (.tuple(let leftItems), .tuple(let rightItems)):
            for (leftItem, rightItem) in zip(leftItems, rightItems) where !leftItem.equals(rightItem) {
                return try ordering(leftItem, rightItem, symbol, location)
            }
            return leftItems.count < rightItems.count ? -1 : leftItems.count > rightItems.count ? 1 : 0
        default:
            throw location.runtimeError(
                "'\(symbol)' not supported between instances of '\(left.typeName)' and '\(right.typeName)'")
        }
    }

    /// Python `needle in container`.
    func contains(_ rawContainer: JinjaValue, _ rawNeedle: JinjaValue, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> Bool {
        let container = rawContainer.demoted
        let needle = rawNeedle.demoted
        switch container {
        case .undefined: return false
        case .string(let text):
            guard case .string(let part) = needle else {
                throw location.runtimeError("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            return part.isEmpty || text.unicodeScalars.firstRange(of: part.unicodeScalars) != nil
        case .array(let items), .tuple(let items): return items.contains { $0.equals(needle) }
        case .range(let range): return range.values.contains { $0.equals(needle) }
        case .dictionary(let dictionary):
            guard JinjaDictionaryKey(needle) != nil else {
                throw location.runtimeError("unhashable type: '\(needle.typeName)'")
            }
            return dictionary.value(for: needle) != nil
        case .iterator(let items), .view(_, let items): return items.contains { $0.equals(needle) }
        case .failedIterator(let reason): throw location.runtimeError(reason)
        case .namespace(let namespace):
            guard case .string(let key) = needle else { return false }
            return namespace.attributes[key] != nil
        default:
            throw location.runtimeError("argument of type '\(container.typeName)' is not iterable")
        }
    }

    /// Python's printf-style `format % values` for `%s`, `%d`, `%i`, `%r`, `%f` and `%%`.
    func percentFormat(_ format: String, _ values: JinjaValue, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> String {
        var arguments: [JinjaValue]
        // Python treats a non-tuple argument with __getitem__ (list, dict) as a mapping: unused, it is
        // not an error.
        var usedAsMapping = false
        switch values {
        case .tuple(let items): arguments = items
        case .array, .dictionary, .range:
            arguments = [values]
            usedAsMapping = true
        default: arguments = [values]
        }
        var result = ""
        var iterator = format.makeIterator()
        while let character = iterator.next() {
            guard character == "%" else {
                result.append(character)
                continue
            }
            guard let conversion = iterator.next() else {
                throw location.runtimeError("incomplete format")
            }
            if conversion == "%" {
                result.append("%")
                continue
            }
            guard !arguments.isEmpty else { throw location.runtimeError("not enough arguments for format string") }
            let argument = arguments.removeFirst()
            switch conversion {
            case "s": result += argument.string
            case "r": result += argument.representation
            case "d", "i":
                guard let number = argument.numericValue else {
                    throw location.runtimeError("%\(conversion) format: a real number is required, not \(argument.typeName)")
                }
                result += String(Int(number.rounded(.towardZero)))
            case "f":
                guard let number = argument.numericValue else {
                    throw location.runtimeError("%f format: a real number is required, not \(argument.typeName)")
                }
                result += formatFixed(number, digits: 6)
            default:
                throw location.runtimeError("unsupported format character '\(conversion)'")
            }
        }
        guard arguments.isEmpty || usedAsMapping else {
            throw location.runtimeError("not all arguments converted during string formatting")
        }
        return result
    }
}

/// `number` with exactly `digits` decimals (C's `%.*f`, which Python's `%f` and `round` output match).
func formatFixed(_ number: Double, digits: Int) -> String {
    if number.isNaN { return "nan" }
    if number.isInfinite { return number < 0 ? "-inf" : "inf" }
    return String(format: "%.*f", digits, number)
}

/// markupsafe's `Markup.__add__` / `__radd__`: when one string operand is Markup, the other is
/// HTML-escaped and the result is Markup. Nil when neither operand is Markup (or one is not a string).
private func markupConcatenation(_ left: JinjaValue, _ right: JinjaValue) -> JinjaValue? {
    switch (left, right) {
    case (.markup(let leftText), .markup(let rightText)): return .markup(leftText + rightText)
    case (.markup(let leftText), .string(let rightText)): return .markup(leftText + htmlEscape(rightText))
    case (.string(let leftText), .markup(let rightText)): return .markup(htmlEscape(leftText) + rightText)
    default: return nil
    }
}

/// Whether Jinja folds `expression` to a constant at compile time (literals and operators on them).
private func isConstant(_ expression: JinjaExpression) -> Bool {
    switch expression {
    case .literal: return true
    case .unary(_, let operand, _): return isConstant(operand)
    case .binary(let operation, let left, let right, _):
        return operation != .and && operation != .or && isConstant(left) && isConstant(right)
    default: return false
    }
}
